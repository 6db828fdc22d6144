//! Access keys for SigV4: stored as documents (kind `access-key`), created on first start and by
//! `ferrite keys`, looked up (with a short cache) for every signed request.

use rand_bytes::random;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{DocOp, Documents, StoreError};

const KIND: &str = "access-key";
/// How long a looked-up secret is trusted before the store is asked again (deletions take
/// effect within this time).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// An access key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub description: String,
    pub created_ms: i64,
}

/// Access keys, backed by the documents table.
#[derive(Debug)]
pub struct Keys {
    docs: Arc<Documents>,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

mod rand_bytes {
    /// `n` random bytes from the operating system.
    pub fn random<const N: usize>() -> [u8; N] {
        let mut b = [0u8; N];
        // SystemRandom only fails if the OS has no entropy source, which Ferrite cannot run without.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        b
    }
}

fn encode(bytes: &[u8], alphabet: &[u8]) -> String {
    bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect()
}

impl Keys {
    /// Keys stored in `docs`.
    pub fn new(docs: Arc<Documents>) -> Keys {
        Keys { docs, cache: Mutex::new(HashMap::new()) }
    }

    /// The secret of an access key id.
    pub fn secret(&self, id: &str) -> Option<String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((secret, at)) = cache.get(id)
            && at.elapsed() < CACHE_TTL
        {
            return Some(secret.clone());
        }
        let found = self.docs.get(KIND, id).ok().flatten().and_then(|v| serde_json::from_str::<AccessKey>(&v).ok());
        match found {
            Some(k) => {
                cache.insert(id.to_string(), (k.secret.clone(), Instant::now()));
                Some(k.secret)
            }
            None => {
                cache.remove(id);
                None
            }
        }
    }

    /// Creates and stores a new key pair.
    pub fn create(&self, description: &str) -> Result<AccessKey, StoreError> {
        let id = format!("AKIA{}", encode(&random::<16>(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
        let secret = encode(&random::<40>(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        let key = AccessKey { id, secret, description: description.to_string(), created_ms: broker::message::unix_ms() };
        let value = serde_json::to_string(&key).unwrap_or_default();
        self.docs.apply(&[DocOp::Put { kind: KIND, key: key.id.clone(), value }])?;
        Ok(key)
    }

    /// Every key (secrets included: the caller decides what to show).
    pub fn list(&self) -> Result<Vec<AccessKey>, StoreError> {
        Ok(self.docs.load(KIND)?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
    }

    /// Deletes a key; false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.docs.get(KIND, id)?.is_some();
        self.docs.apply(&[DocOp::Delete { kind: KIND, key: id.to_string() }])?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        Ok(existed)
    }
}
