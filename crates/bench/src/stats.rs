//! Counting: which (publisher, sequence) pairs a subscriber has seen, and latency histograms.

use hdrhistogram::Histogram;

/// Largest latency the histograms hold, in microseconds (longer ones are recorded as this).
const MAX_US: u64 = 600_000_000;

/// A latency histogram in microseconds, three significant digits.
pub fn histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (it refuses only low < 1, high < 2 * low, or more
    // than 5 significant digits).
    Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid")
}

/// One bit per (publisher, sequence number): distinct messages received, and duplicates.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    bits: Vec<Vec<u64>>,
}

impl Seen {
    /// Room for `publishers` publishers.
    pub fn new(publishers: usize) -> Seen {
        Seen { bits: vec![Vec::new(); publishers] }
    }

    /// Marks a message seen; false if it already was (a duplicate) or the publisher is unknown.
    pub fn insert(&mut self, publisher: u32, seq: u32) -> Option<bool> {
        let words = self.bits.get_mut(publisher as usize)?;
        let (w, b) = ((seq >> 6) as usize, seq & 63);
        if words.len() <= w {
            words.resize((w + 1).next_power_of_two().max(1024), 0);
        }
        let mask = 1u64 << b;
        let new = words[w] & mask == 0;
        words[w] |= mask;
        Some(new)
    }

    /// Distinct messages seen.
    pub fn count(&self) -> u64 {
        self.bits.iter().flatten().map(|w| w.count_ones() as u64).sum()
    }

    /// Adds what `other` has seen (the members of a shared subscription together).
    pub fn union(&mut self, other: &Seen) {
        if self.bits.len() < other.bits.len() {
            self.bits.resize(other.bits.len(), Vec::new());
        }
        for (mine, theirs) in self.bits.iter_mut().zip(&other.bits) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a |= b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_distinct_and_duplicates() {
        let mut s = Seen::new(2);
        assert_eq!(s.insert(0, 0), Some(true));
        assert_eq!(s.insert(0, 0), Some(false));
        assert_eq!(s.insert(1, 100_000), Some(true));
        assert_eq!(s.insert(2, 0), None);
        assert_eq!(s.count(), 2);
        let mut t = Seen::new(2);
        t.insert(0, 1);
        t.insert(0, 0);
        s.union(&t);
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn histogram_saturates() {
        let mut h = histogram();
        h.saturating_record(MAX_US * 10);
        h.saturating_record(5);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= MAX_US / 2);
    }
}
