//! Authorization denials counted per client id, principal and action (`connect`, `publish`,
//! `subscribe`, `receive`); Device Defender will read the per-device counts. `/metrics` shows
//! them summed by action only (`ferrite_authz_denied_total{action=...}`): device identities stay
//! out of labels, and the label set is bounded. The number of per-device series kept is bounded
//! too: past the bound, new (client, principal, action) triples are counted under `_other`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Distinct series kept.
pub const MAX_SERIES: usize = 10_000;

/// The counters.
#[derive(Debug, Default)]
pub struct Denials {
    counts: Mutex<BTreeMap<(String, String, &'static str), u64>>,
}

impl Denials {
    /// Counts one denial.
    pub fn count(&self, client_id: &str, principal: &str, action: &'static str) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let key = (client_id.to_string(), principal.to_string(), action);
        if let Some(n) = m.get_mut(&key) {
            *n += 1;
        } else if m.len() < MAX_SERIES {
            m.insert(key, 1);
        } else {
            *m.entry(("_other".into(), String::new(), action)).or_default() += 1;
        }
    }

    /// The count of one series.
    pub fn get(&self, client_id: &str, principal: &str, action: &'static str) -> u64 {
        let m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(client_id.to_string(), principal.to_string(), action)).copied().unwrap_or(0)
    }

    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_action: BTreeMap<&'static str, u64> = BTreeMap::new();
        for ((_, _, action), n) in m.iter() {
            *by_action.entry(action).or_default() += n;
        }
        out.push_str("# HELP ferrite_authz_denied_total MQTT actions denied by policy, by action.\n");
        out.push_str("# TYPE ferrite_authz_denied_total counter\n");
        for (action, n) in by_action {
            let _ = writeln!(out, "ferrite_authz_denied_total{{action=\"{action}\"}} {n}");
        }
    }

    /// [`Denials::render`] into a new string.
    pub fn render_string(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_series_bounded_and_escaped() {
        let d = Denials::default();
        d.count("a\"b", "p", "publish");
        d.count("a\"b", "p", "publish");
        assert_eq!(d.get("a\"b", "p", "publish"), 2);
        assert!(d.render_string().contains("ferrite_authz_denied_total{action=\"publish\"} 2"));
        assert!(!d.render_string().contains("a\\\"b"), "no client id in the labels");
        for i in 0..MAX_SERIES + 5 {
            d.count(&format!("c{i}"), "", "subscribe");
        }
        assert_eq!(d.get("_other", "", "subscribe"), 6);
    }
}
