//! `Decimal`: a decimal number of 34 significant digits (IEEE 754 decimal128 precision,
//! rounded half-even), with the scale kept, printed like Java's `BigDecimal.toString`.

use std::cmp::Ordering;
use std::fmt;

use num_bigint::{BigInt, Sign};

/// Significant digits kept by arithmetic (AWS: "a precision of 34 digits").
pub const PRECISION: usize = 34;
/// Largest adjusted exponent accepted (AWS: "maximum magnitude 9.999…E999").
const MAX_EXP: i64 = 999;
/// Smallest adjusted exponent accepted (AWS: "minimum non-zero magnitude of 1E-999").
const MIN_EXP: i64 = -999;

/// A decimal `coef × 10^-scale`.
#[derive(Clone, Debug)]
pub struct Decimal {
    coef: BigInt,
    scale: i64,
}

fn pow10(n: u64) -> BigInt {
    BigInt::from(10u32).pow(n as u32)
}

fn digit_count(n: &BigInt) -> usize {
    if n.sign() == Sign::NoSign { 1 } else { n.magnitude().to_string().len() }
}

impl Decimal {
    /// Builds `coef × 10^-scale` without rounding.
    pub fn new(coef: BigInt, scale: i64) -> Decimal {
        Decimal { coef, scale }
    }

    /// The integer `n` as a Decimal of scale 0.
    pub fn from_i128(n: i128) -> Decimal {
        Decimal { coef: BigInt::from(n), scale: 0 }
    }

    /// The coefficient (unscaled value).
    pub fn coef(&self) -> &BigInt {
        &self.coef
    }

    /// The scale (digits after the point; negative for trailing zeros before it).
    pub fn scale(&self) -> i64 {
        self.scale
    }

    /// Parses a JSON or SQL number (`-?digits(.digits)?([eE][+-]?digits)?`), rounding to 34
    /// digits. Magnitudes beyond AWS's range are kept (arithmetic on them gives Undefined)
    /// up to an exponent of ±100000; `None` past that or when the text is not a number.
    pub fn parse(s: &str) -> Option<Decimal> {
        let d = Decimal::parse_digits(s)?.round_digits(PRECISION);
        let adjusted = digit_count(&d.coef) as i64 - 1 - d.scale;
        (adjusted.abs() <= 100_000).then_some(d)
    }

    fn parse_digits(s: &str) -> Option<Decimal> {
        let b = s.as_bytes();
        let mut i = 0;
        let neg = b.first() == Some(&b'-');
        if neg || b.first() == Some(&b'+') {
            i += 1;
        }
        let mut digits = String::new();
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] as char);
            i += 1;
        }
        if i == start {
            return None;
        }
        let mut scale: i64 = 0;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let fs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] as char);
                i += 1;
            }
            if i == fs {
                return None;
            }
            scale = (i - fs) as i64;
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = b.get(i) == Some(&b'-');
            if eneg || b.get(i) == Some(&b'+') {
                i += 1;
            }
            let es = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == es || i - es > 9 {
                return None;
            }
            let e: i64 = s[es..i].parse().ok()?;
            scale -= if eneg { -e } else { e };
        }
        if i != b.len() {
            return None;
        }
        let mut coef: BigInt = digits.parse().ok()?;
        if neg {
            coef = -coef;
        }
        Some(Decimal { coef, scale })
    }

    /// Parses a string the way AWS converts strings to Decimal: it must match
    /// `^-?\d+(\.\d+)?((?i)E-?\d+)?$` and be within AWS's range.
    pub fn parse_aws(s: &str) -> Option<Decimal> {
        if s.starts_with('+') || s.contains("e+") || s.contains("E+") {
            return None;
        }
        Decimal::parse_digits(s)?.rounded()
    }

    /// The Decimal Java's `BigDecimal.valueOf(double)` gives (digits of `Double.toString`).
    /// `None` for NaN and infinities.
    pub fn from_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Decimal { coef: BigInt::from(0), scale: 1 });
        }
        let sci = format!("{:e}", f.abs());
        let (mant, exp) = sci.split_once('e')?;
        let exp: i64 = exp.parse().ok()?;
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        let mut coef: BigInt = digits.parse().ok()?;
        let n = digits.len() as i64;
        let abs = f.abs();
        let mut scale = (n - 1) - exp;
        if (1e-3..1e7).contains(&abs) {
            if scale < 1 {
                coef *= pow10((1 - scale) as u64);
                scale = 1;
            }
        } else if n == 1 {
            coef *= 10;
            scale += 1;
        }
        if f < 0.0 {
            coef = -coef;
        }
        Some(Decimal { coef, scale })
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounds to 34 significant digits, half-even; `None` when the exponent leaves AWS's range.
    pub fn rounded(self) -> Option<Decimal> {
        let d = self.round_digits(PRECISION);
        if d.coef.sign() == Sign::NoSign {
            return Some(d);
        }
        let adjusted = digit_count(&d.coef) as i64 - 1 - d.scale;
        if !(MIN_EXP..=MAX_EXP).contains(&adjusted) {
            return None;
        }
        Some(d)
    }

    fn round_digits(self, precision: usize) -> Decimal {
        let n = digit_count(&self.coef);
        if n <= precision {
            return self;
        }
        let drop = (n - precision) as u64;
        let divisor = pow10(drop);
        let neg = self.coef.sign() == Sign::Minus;
        let mag = BigInt::from_biguint(Sign::Plus, self.coef.magnitude().clone());
        let mut q = &mag / &divisor;
        let r = &mag % &divisor;
        let twice: BigInt = &r * 2u32;
        let up = match twice.cmp(&divisor) {
            Ordering::Greater => true,
            Ordering::Equal => (&q % 2u32) == BigInt::from(1),
            Ordering::Less => false,
        };
        if up {
            q += 1;
        }
        let mut scale = self.scale - drop as i64;
        if digit_count(&q) > precision {
            q /= 10;
            scale -= 1;
        }
        Decimal { coef: if neg { -q } else { q }, scale }
    }

    fn aligned(&self, other: &Decimal) -> (BigInt, BigInt, i64) {
        let s = self.scale.max(other.scale);
        let a = &self.coef * pow10((s - self.scale) as u64);
        let b = &other.coef * pow10((s - other.scale) as u64);
        (a, b, s)
    }

    /// `self + other`, rounded to 34 digits.
    pub fn add(&self, other: &Decimal) -> Option<Decimal> {
        let (a, b, s) = self.aligned(other);
        Decimal { coef: a + b, scale: s }.rounded()
    }

    /// `self - other`, rounded to 34 digits.
    pub fn sub(&self, other: &Decimal) -> Option<Decimal> {
        let (a, b, s) = self.aligned(other);
        Decimal { coef: a - b, scale: s }.rounded()
    }

    /// `self × other`, rounded to 34 digits.
    pub fn mul(&self, other: &Decimal) -> Option<Decimal> {
        Decimal { coef: &self.coef * &other.coef, scale: self.scale + other.scale }.rounded()
    }

    /// `self ÷ other` like `BigDecimal.divide(other, MathContext.DECIMAL128)`; `None` when
    /// dividing by zero.
    pub fn div(&self, other: &Decimal) -> Option<Decimal> {
        if other.is_zero() {
            return None;
        }
        let preferred = self.scale - other.scale;
        if self.is_zero() {
            return Some(Decimal { coef: BigInt::from(0), scale: preferred.max(0) });
        }
        let extra = (PRECISION as i64 + 3 + digit_count(&other.coef) as i64 - digit_count(&self.coef) as i64).max(0);
        let num = &self.coef * pow10(extra as u64);
        let mut q = &num / &other.coef;
        let r = &num % &other.coef;
        let mut scale = preferred + extra;
        if r.sign() != Sign::NoSign {
            // A sticky digit so that half-even rounding sees "more than half".
            q = q * 10 + if (r.sign() == Sign::Minus) != (other.coef.sign() == Sign::Minus) { -1 } else { 1 };
            scale += 1;
            return Decimal { coef: q, scale }.rounded();
        }
        let ten = BigInt::from(10);
        while scale > preferred && (&q % &ten).sign() == Sign::NoSign {
            q /= 10;
            scale -= 1;
        }
        Decimal { coef: q, scale }.rounded()
    }

    /// The remainder of truncating division (sign of the dividend), like
    /// `BigDecimal.remainder`; `None` when dividing by zero.
    pub fn rem(&self, other: &Decimal) -> Option<Decimal> {
        if other.is_zero() {
            return None;
        }
        let (a, b, s) = self.aligned(other);
        Decimal { coef: a % b, scale: s }.rounded()
    }

    /// `-self`.
    pub fn neg(&self) -> Decimal {
        Decimal { coef: -self.coef.clone(), scale: self.scale }
    }

    /// `|self|`.
    pub fn abs(&self) -> Decimal {
        if self.coef.sign() == Sign::Minus { self.neg() } else { self.clone() }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.coef.sign() == Sign::NoSign
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        match self.coef.sign() {
            Sign::Minus => -1,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        }
    }

    /// Numeric comparison (scale ignored).
    pub fn cmp_num(&self, other: &Decimal) -> Ordering {
        let (a, b, _) = self.aligned(other);
        a.cmp(&b)
    }

    /// Whether the value has no fractional part.
    pub fn is_integral(&self) -> bool {
        if self.scale <= 0 {
            return true;
        }
        (&self.coef % pow10(self.scale as u64)).sign() == Sign::NoSign
    }

    /// The integer part as a BigInt, rounding in the given way.
    fn to_integer(&self, mode: IntRounding) -> BigInt {
        if self.scale <= 0 {
            return &self.coef * pow10((-self.scale) as u64);
        }
        let d = pow10(self.scale as u64);
        let q = &self.coef / &d;
        let r = &self.coef % &d;
        if r.sign() == Sign::NoSign {
            return q;
        }
        let neg = self.coef.sign() == Sign::Minus;
        match mode {
            IntRounding::Down => q,
            IntRounding::Floor => {
                if neg {
                    q - 1
                } else {
                    q
                }
            }
            IntRounding::Ceiling => {
                if neg {
                    q
                } else {
                    q + 1
                }
            }
            IntRounding::HalfUp => {
                let twice: BigInt = r * 2;
                let away = BigInt::from_biguint(Sign::Plus, twice.magnitude().clone()) >= d;
                match (away, neg) {
                    (false, _) => q,
                    (true, true) => q - 1,
                    (true, false) => q + 1,
                }
            }
        }
    }

    /// The integer value rounded as asked, if it fits an `i128`.
    pub fn to_i128(&self, mode: IntRounding) -> Option<i128> {
        if self.scale < -40 && !self.is_zero() {
            return None;
        }
        i128::try_from(self.to_integer(mode)).ok()
    }

    /// The integer value rounded as asked, saturating at the `i64` bounds.
    pub fn to_i64_saturating(&self, mode: IntRounding) -> i64 {
        if self.scale < -40 && !self.is_zero() {
            return if self.signum() < 0 { i64::MIN } else { i64::MAX };
        }
        let v = self.to_integer(mode);
        i64::try_from(&v).unwrap_or(if v.sign() == Sign::Minus { i64::MIN } else { i64::MAX })
    }

    /// Truncates (toward zero) to `places` decimal places and strips trailing zeros (never
    /// below scale 0).
    pub fn trunc_places(&self, places: i64) -> Decimal {
        let mut d = if self.scale > places {
            let q = &self.coef / pow10((self.scale - places) as u64);
            Decimal { coef: q, scale: places }
        } else {
            self.clone()
        };
        d.strip_zeros_to(0);
        d
    }

    /// Removes trailing zeros while the scale stays at or above `min_scale`.
    pub fn strip_zeros_to(&mut self, min_scale: i64) {
        if self.is_zero() {
            self.scale = self.scale.min(min_scale.max(0));
            return;
        }
        let ten = BigInt::from(10);
        while self.scale > min_scale && (&self.coef % &ten).sign() == Sign::NoSign {
            self.coef /= 10;
            self.scale -= 1;
        }
    }
}

/// How a Decimal becomes an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntRounding {
    /// Toward zero (Java's `intValue`, AWS's "rounded down" in casts and bit functions).
    Down,
    /// Toward negative infinity (`floor`).
    Floor,
    /// Toward positive infinity (`ceil`).
    Ceiling,
    /// To nearest, halves away from zero (`round`, and the standard conversion to Int).
    HalfUp,
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.cmp_num(other) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    /// Java's `BigDecimal.toString`: plain when the scale is not negative and the adjusted
    /// exponent is at least -6, otherwise scientific (`5E-12`, `1.0E+7`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.coef.magnitude().to_string();
        let neg = self.coef.sign() == Sign::Minus;
        let n = digits.len() as i64;
        let adjusted = n - 1 - self.scale;
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if self.scale >= 0 && adjusted >= -6 {
            if self.scale == 0 {
                out.push_str(&digits);
            } else if n > self.scale {
                let point = (n - self.scale) as usize;
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            } else {
                out.push_str("0.");
                for _ in 0..(self.scale - n) {
                    out.push('0');
                }
                out.push_str(&digits);
            }
        } else {
            out.push_str(&digits[..1]);
            if n > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('E');
            if adjusted >= 0 {
                out.push('+');
            }
            out.push_str(&adjusted.to_string());
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).expect("valid decimal")
    }

    #[test]
    fn prints_like_java() {
        assert_eq!(d("5E-12").to_string(), "5E-12");
        assert_eq!(d("10.0").to_string(), "10.0");
        assert_eq!(d("1e2").to_string(), "1E+2");
        assert_eq!(d("0.000001").to_string(), "0.000001");
        assert_eq!(d("0.0000001").to_string(), "1E-7");
        assert_eq!(Decimal::from_f64(3.0).map(|x| x.to_string()).as_deref(), Some("3.0"));
        assert_eq!(Decimal::from_f64(1e7).map(|x| x.to_string()).as_deref(), Some("1.0E+7"));
        assert_eq!(Decimal::from_f64(0.001).map(|x| x.to_string()).as_deref(), Some("0.001"));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(d("54.98").mul(&d("1.8")).map(|x| x.to_string()).as_deref(), Some("98.964"));
        assert_eq!(d("0.1").add(&d("0.2")).map(|x| x.to_string()).as_deref(), Some("0.3"));
        assert_eq!(d("1").div(&d("3")).map(|x| x.to_string()).as_deref(), Some("0.3333333333333333333333333333333333"));
        assert_eq!(d("10.0").div(&d("4")).map(|x| x.to_string()).as_deref(), Some("2.5"));
        assert_eq!(d("6.0").div(&d("2.0")).map(|x| x.to_string()).as_deref(), Some("3"));
        assert_eq!(d("2").div(&d("3")).map(|x| x.to_string()).as_deref(), Some("0.6666666666666666666666666666666667"));
        assert_eq!(d("-8.5").rem(&d("3")).map(|x| x.to_string()).as_deref(), Some("-2.5"));
        assert_eq!(d("-1.5").to_i128(IntRounding::HalfUp), Some(-2));
        assert_eq!(d("-1.2").to_i128(IntRounding::Floor), Some(-2));
        assert_eq!(d("-1.2").to_i128(IntRounding::Ceiling), Some(-1));
        assert_eq!(d("2.3123").trunc_places(2).to_string(), "2.31");
        assert_eq!(d("2.00").trunc_places(5).to_string(), "2");
    }
}
