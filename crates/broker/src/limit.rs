//! Rate limits: a token bucket for connections per second and publishes per second.

use std::time::{Duration, Instant};

/// `rate` tokens per second, bursts up to `rate`. A rate of 0 never limits.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: u32) -> Bucket {
        Bucket { rate: rate as f64, tokens: rate as f64, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
    }

    /// Takes a token; false when none is left.
    pub(crate) fn take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token even if that leaves the bucket in debt; returns how long until it is out of debt.
    pub(crate) fn take_or_owe(&mut self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        self.refill(Instant::now());
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_owes() {
        let mut b = Bucket::new(10);
        for _ in 0..10 {
            assert!(b.take());
        }
        assert!(!b.take());
        let owed = b.take_or_owe();
        assert!(owed > Duration::ZERO && owed <= Duration::from_millis(110), "{owed:?}");
        let mut free = Bucket::new(0);
        assert!((0..1000).all(|_| free.take()));
        assert_eq!(free.take_or_owe(), Duration::ZERO);
    }
}
