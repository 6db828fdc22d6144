//! The function library: the table of names (with the SQL version each needs) and the
//! dispatch of a call to its implementation.

mod context;
mod hash;
mod math;
mod misc;
mod strings;
mod time;

use crate::ast::Expr;
use crate::error::EvalError;
use crate::eval::{Env, eval};
use crate::value::Value;

pub(crate) use misc::cast;

macro_rules! functions {
    ($($variant:ident = $name:literal $(, $since:ident)?;)*) => {
        /// A built-in function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Func {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        const TABLE: &[(&str, Func, bool)] = &[
            $(($name, Func::$variant, functions!(@since $($since)?)),)*
        ];
    };
    (@since V2016) => { true };
    (@since) => { false };
}

functions! {
    Abs = "abs";
    AccountId = "accountid";
    Acos = "acos";
    Asin = "asin";
    Atan = "atan";
    Atan2 = "atan2";
    AwsLambda = "aws_lambda";
    BitAnd = "bitand";
    BitNot = "bitnot";
    BitOr = "bitor";
    BitXor = "bitxor";
    Ceil = "ceil";
    Chr = "chr";
    ClientId = "clientid";
    Concat = "concat";
    Cos = "cos";
    Cosh = "cosh";
    Crc32 = "crc32";
    Decode = "decode", V2016;
    Encode = "encode", V2016;
    EndsWith = "endswith";
    Exp = "exp";
    Floor = "floor";
    Get = "get";
    GetDynamoDb = "get_dynamodb", V2016;
    GetMqttProperty = "get_mqtt_property", V2016;
    GetOrDefault = "get_or_default", V2016;
    GetRegistryData = "get_registry_data", V2016;
    GetSecret = "get_secret";
    GetThingShadow = "get_thing_shadow", V2016;
    GetUserProperties = "get_user_properties", V2016;
    IndexOf = "indexof", V2016;
    IsNull = "isnull";
    IsUndefined = "isundefined", V2016;
    Length = "length", V2016;
    Ln = "ln";
    Log = "log";
    Lower = "lower";
    Lpad = "lpad";
    Ltrim = "ltrim";
    MachineLearningPredict = "machinelearning_predict";
    Md2 = "md2";
    Md5 = "md5";
    Mod = "mod";
    Nanvl = "nanvl";
    NewUuid = "newuuid";
    NumBytes = "numbytes", V2016;
    ParseTime = "parse_time", V2016;
    Power = "power";
    Principal = "principal";
    Rand = "rand";
    RegexpMatches = "regexp_matches";
    RegexpReplace = "regexp_replace";
    RegexpSubstr = "regexp_substr";
    Remainder = "remainder";
    Replace = "replace";
    Round = "round";
    Rpad = "rpad";
    Rtrim = "rtrim";
    Sha1 = "sha1";
    Sha224 = "sha224";
    Sha256 = "sha256";
    Sha384 = "sha384";
    Sha512 = "sha512";
    Sign = "sign";
    Sin = "sin";
    Sinh = "sinh";
    SourceIp = "sourceip";
    SqlVersion = "sql_version";
    Sqrt = "sqrt";
    StartsWith = "startswith";
    Substring = "substring";
    Tan = "tan";
    Tanh = "tanh";
    TimeToEpoch = "time_to_epoch", V2016;
    Timestamp = "timestamp";
    Topic = "topic";
    TraceId = "traceid";
    Transform = "transform", V2016;
    Trim = "trim";
    Trunc = "trunc";
    Upper = "upper";
}

impl Func {
    /// The function named `name` (any case).
    pub fn lookup(name: &str) -> Option<Func> {
        TABLE.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).map(|(_, f, _)| *f)
    }

    /// Its canonical name.
    pub fn name(self) -> &'static str {
        TABLE.iter().find(|(_, f, _)| *f == self).map(|(n, _, _)| *n).unwrap_or("?")
    }

    /// Whether it exists only from SQL version 2016-03-23.
    pub fn since_2016(self) -> bool {
        TABLE.iter().any(|(_, f, s)| *f == self && *s)
    }

    /// Every function, with its canonical name.
    pub fn all() -> impl Iterator<Item = (&'static str, Func)> {
        TABLE.iter().map(|(n, f, _)| (*n, *f))
    }
}

/// Calls `f`: arguments are evaluated first, except for the functions that look at an
/// argument's form (`get_or_default` catches its first argument's failure, `encode(*, ..)`
/// reads the raw payload).
pub(crate) fn call(f: Func, args: &[Expr], doc: &Value, env: &Env) -> Result<Value, EvalError> {
    match f {
        Func::GetOrDefault => {
            if args.is_empty() || args.len() > 2 {
                return Ok(Value::Undefined);
            }
            let first = eval(&args[0], doc, env).unwrap_or(Value::Undefined);
            if !matches!(first, Value::Undefined | Value::Null) {
                return Ok(first);
            }
            return match args.get(1) {
                Some(d) => eval(d, doc, env),
                None => Ok(Value::Undefined),
            };
        }
        Func::Encode => {
            if let ([Expr::Star, scheme], Some(raw)) = (args, env.raw) {
                let scheme = eval(scheme, doc, env)?;
                return Ok(misc::encode_bytes(raw, &scheme));
            }
        }
        _ => {}
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, doc, env)?);
    }
    apply(f, &vals, env)
}

/// Applies `f` to evaluated arguments. A wrong number of arguments gives Undefined, as do
/// wrong types ("Functions called with invalid arguments ... return Undefined").
fn apply(f: Func, a: &[Value], env: &Env) -> Result<Value, EvalError> {
    use Func::*;
    Ok(match (f, a) {
        (Abs, [x]) => math::abs(x),
        (Acos, [x]) => math::double(x, f64::acos),
        (Asin, [x]) => math::double(x, f64::asin),
        (Atan, [x]) => math::double(x, f64::atan),
        (Atan2, [y, x]) => math::double2(y, x, f64::atan2),
        (Cos, [x]) => math::double(x, f64::cos),
        (Cosh, [x]) => math::double(x, f64::cosh),
        (Exp, [x]) => math::double(x, f64::exp),
        (Ln, [x]) => math::double(x, f64::ln),
        (Log, [x]) => math::double(x, f64::log10),
        (Sin, [x]) => math::double(x, f64::sin),
        (Sinh, [x]) => math::double(x, f64::sinh),
        (Sqrt, [x]) => math::double(x, f64::sqrt),
        (Tan, [x]) => math::double(x, f64::tan),
        (Tanh, [x]) => math::double(x, f64::tanh),
        (Power, [x, y]) => math::double2(x, y, f64::powf),
        (BitAnd, [x, y]) => math::bits(x, y, |a, b| a & b),
        (BitOr, [x, y]) => math::bits(x, y, |a, b| a | b),
        (BitXor, [x, y]) => math::bits(x, y, |a, b| a ^ b),
        (BitNot, [x]) => math::bitnot(x),
        (Ceil, [x]) => math::rounding(x, crate::decimal::IntRounding::Ceiling),
        (Floor, [x]) => math::rounding(x, crate::decimal::IntRounding::Floor),
        (Round, [x]) => math::rounding(x, crate::decimal::IntRounding::HalfUp),
        (Sign, [x]) => math::sign(x),
        (Mod | Remainder, [x, y]) => crate::ops::binary(crate::ast::BinOp::Rem, x, y),
        (Trunc, [x, n]) => math::trunc(x, n),
        (Nanvl, [x, y]) => match x {
            Value::Undefined | Value::Null => y.clone(),
            other => other.clone(),
        },
        (Chr, [x]) => strings::chr(x),
        (Concat, _) => strings::concat(a),
        (EndsWith, [s, t]) => strings::both(s, t, |s, t| Value::Bool(s.ends_with(t))),
        (StartsWith, [s, t]) => strings::both(s, t, |s, t| Value::Bool(s.starts_with(t))),
        (IndexOf, [s, t]) => strings::both(s, t, strings::index_of),
        (Length, [s]) => strings::map(s, |s| Value::Int(s.chars().count() as i128)),
        (NumBytes, [s]) => strings::map(s, |s| Value::Int(s.len() as i128)),
        (Lower, [s]) => strings::map(s, |s| Value::String(s.to_lowercase())),
        (Upper, [s]) => strings::map(s, |s| Value::String(s.to_uppercase())),
        (Ltrim, [s]) => strings::map(s, |s| Value::string(s.trim_start())),
        (Rtrim, [s]) => strings::map(s, |s| Value::string(s.trim_end())),
        (Trim, [s]) => strings::map(s, |s| Value::string(s.trim())),
        (Lpad, [s, n]) => strings::pad(s, n, true),
        (Rpad, [s, n]) => strings::pad(s, n, false),
        (Replace, [s, from, to]) => strings::replace(s, from, to),
        (Substring, [s, start]) => strings::substring(s, start, None),
        (Substring, [s, start, end]) => strings::substring(s, start, Some(end)),
        (RegexpMatches, [s, re]) => strings::regexp_matches(s, re),
        (RegexpReplace, [s, re, rep]) => strings::regexp_replace(s, re, rep),
        (RegexpSubstr, [s, re]) => strings::regexp_substr(s, re),
        (Md2, [s]) => hash::hex(s, hash::md2),
        (Md5, [s]) => hash::hex(s, hash::md5),
        (Sha1, [s]) => hash::hex(s, |b| hash::ring_digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)),
        (Sha224, [s]) => hash::hex(s, hash::sha224),
        (Sha256, [s]) => hash::hex(s, |b| hash::ring_digest(&ring::digest::SHA256, b)),
        (Sha384, [s]) => hash::hex(s, |b| hash::ring_digest(&ring::digest::SHA384, b)),
        (Sha512, [s]) => hash::hex(s, |b| hash::ring_digest(&ring::digest::SHA512, b)),
        (Crc32, [s]) => hash::hex(s, |b| hash::crc32(b).to_be_bytes().to_vec()),
        (Get, [c, k]) => misc::get(c, k),
        (IsNull, [x]) => Value::Bool(matches!(x, Value::Null)),
        (IsUndefined, [x]) => Value::Bool(x.is_undefined()),
        (Decode, [v, scheme]) => misc::decode(v, scheme),
        (Encode, [v, scheme]) => misc::encode(v, scheme),
        (Transform, [mode, o, arr]) => misc::transform(mode, o, arr),
        (ParseTime, [p, t]) => time::parse_time(p, t, None),
        (ParseTime, [p, t, z]) => time::parse_time(p, t, Some(z)),
        (TimeToEpoch, [s, p]) => time::time_to_epoch(s, p),
        (SqlVersion, []) => Value::string(env.version.as_str()),
        (MachineLearningPredict, _) => {
            return Err(EvalError::Unsupported("machinelearning_predict".to_string()));
        }
        (
            AccountId | ClientId | NewUuid | Principal | Rand | SourceIp | Timestamp | Topic | TraceId
            | GetMqttProperty | GetUserProperties | GetThingShadow | AwsLambda | GetDynamoDb | GetSecret
            | GetRegistryData,
            _,
        ) => return context::call(f, a, env),
        _ => Value::Undefined,
    })
}
