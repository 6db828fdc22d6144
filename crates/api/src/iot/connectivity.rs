//! GetThingConnectivityData: each client's latest connectivity change as the broker's tap
//! reports it (AWS: for a device whose client id is a registered thing's name). This node's
//! connections only; at most [`MAX_CLIENTS`] clients are remembered (past that, a disconnected
//! one is forgotten for a new one).

use crate::{ApiError, ApiRequest, ApiResponse, Reply};
use broker::tap::{Connected, Disconnected, Tap};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// Clients whose connectivity is remembered.
pub const MAX_CLIENTS: usize = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    connected: bool,
    at_ms: i64,
    reason: Option<&'static str>,
    generation: u64,
}

/// The latest connectivity change of every client.
#[derive(Debug, Default)]
pub struct Connectivity {
    clients: Mutex<HashMap<Box<str>, Entry>>,
}

impl Connectivity {
    fn record(&self, client_id: &str, e: Entry) {
        let mut m = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = m.get_mut(client_id) {
            // A takeover's old connection ends after the new one connected: not newer.
            if old.generation <= e.generation {
                *old = e;
            }
            return;
        }
        if m.len() >= MAX_CLIENTS {
            let Some(gone) = m.iter().find(|(_, e)| !e.connected).map(|(k, _)| k.clone()) else { return };
            m.remove(&gone);
        }
        m.insert(client_id.into(), e);
    }

    fn get(&self, client_id: &str) -> Option<Entry> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(client_id).copied()
    }
}

impl Tap for Connectivity {
    fn connected(&self, c: &Connected<'_>) {
        self.record(c.client_id, Entry { connected: true, at_ms: c.at_ms, reason: None, generation: c.generation });
    }

    fn disconnected(&self, d: &Disconnected<'_>) {
        self.record(d.client_id, Entry { connected: false, at_ms: d.at_ms, reason: Some(d.reason), generation: d.generation });
    }
}

impl super::Inner {
    pub(super) fn get_thing_connectivity_data(&self, req: &ApiRequest) -> Reply {
        let name = req.input().required("thingName")?;
        self.registry.describe_thing(name).map_err(ApiError::from)?;
        let mut out = json!({ "thingName": name, "connected": false });
        if let Some(e) = self.connectivity.get(name) {
            out["connected"] = json!(e.connected);
            out["timestamp"] = super::secs(e.at_ms);
            if let Some(r) = e.reason {
                out["disconnectReason"] = json!(r);
            }
        }
        ApiResponse::json(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeovers_late_disconnect_does_not_hide_the_new_connection() {
        let c = Connectivity::default();
        let source = "127.0.0.1:1".parse().unwrap();
        c.connected(&Connected { client_id: "d", principal: None, source, at_ms: 1, generation: 1 });
        c.connected(&Connected { client_id: "d", principal: None, source, at_ms: 2, generation: 2 });
        c.disconnected(&Disconnected { client_id: "d", principal: None, at_ms: 3, generation: 1, reason: "DUPLICATE_CLIENTID", client_initiated: false });
        assert!(c.get("d").is_some_and(|e| e.connected && e.at_ms == 2));
        c.disconnected(&Disconnected { client_id: "d", principal: None, at_ms: 4, generation: 2, reason: "CONNECTION_LOST", client_initiated: false });
        assert!(c.get("d").is_some_and(|e| !e.connected && e.reason == Some("CONNECTION_LOST")));
    }
}
