//! Access keys for SigV4: documents (kind `access-key`) in the state store's domain `keys`,
//! created on first start, by `ferrite keys` (root keys) and by IAM's CreateAccessKey (a user's
//! keys). Held as a replica: a signed request reads memory; a key created, deactivated or
//! deleted anywhere counts as soon as the change log reaches this node (a key id not known yet
//! makes the replica catch up before it is refused). An Inactive key signs nothing.

use rand_bytes::random;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use store::replica::{Replica, Replicated};
use store::state::{Expect, Write};
use store::{Documents, StoreError};

const KIND: &str = "access-key";

/// Every access key, by id (the replica's state).
#[derive(Debug, Default)]
pub struct KeyTable {
    keys: HashMap<String, AccessKey>,
}

impl Replicated for KeyTable {
    const DOMAIN: &'static str = "keys";
    const KINDS: &'static [&'static str] = &[KIND];

    fn apply_doc(&mut self, kind: &str, key: &str, value: Option<&str>) -> Result<(), String> {
        if kind != KIND {
            return Ok(());
        }
        match value {
            Some(v) => {
                let k: AccessKey = serde_json::from_str(v).map_err(|e| e.to_string())?;
                self.keys.insert(key.to_string(), k);
            }
            None => {
                self.keys.remove(key);
            }
        }
        Ok(())
    }
}

/// An access key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub description: String,
    pub created_ms: i64,
    /// The IAM user the key belongs to; `None`: a root key (full access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Active` or `Inactive` (IAM's UpdateAccessKey).
    #[serde(default = "active")]
    pub status: String,
}

fn active() -> String {
    "Active".into()
}

/// Access keys, backed by the documents table.
#[derive(Debug)]
pub struct Keys {
    docs: Arc<Documents>,
    replica: Arc<Replica<KeyTable>>,
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

/// An AWS-style identifier: `prefix` and `n` (at most 32) random upper-case letters and digits.
pub(crate) fn random_id(prefix: &str, n: usize) -> String {
    let mut id = encode(&random::<32>(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    id.truncate(n);
    format!("{prefix}{id}")
}

fn encode(bytes: &[u8], alphabet: &[u8]) -> String {
    bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect()
}

impl Keys {
    /// The keys stored in `docs` (a replica of the domain `keys`). Blocking.
    pub fn open(docs: Arc<Documents>) -> Result<Keys, StoreError> {
        let replica = Replica::open(docs.state().clone())?;
        Ok(Keys { docs, replica })
    }

    /// Applies keys changed elsewhere as they change. Call inside a Tokio runtime.
    pub fn follow(&self) {
        self.replica.follow();
    }

    /// The documents the keys are kept in.
    pub(crate) fn docs(&self) -> &Arc<Documents> {
        &self.docs
    }

    /// The secret of an Active access key id.
    pub fn secret(&self, id: &str) -> Option<String> {
        self.get(id).map(|k| k.secret)
    }

    /// An Active access key.
    pub fn get(&self, id: &str) -> Option<AccessKey> {
        self.load(id).filter(|k| k.status == "Active")
    }

    /// A key as stored, whatever its status (an unknown id: after catching up with the log).
    pub fn load(&self, id: &str) -> Option<AccessKey> {
        if let Some(k) = self.replica.read().keys.get(id) {
            return Some(k.clone());
        }
        if let Err(e) = self.replica.catch_up() {
            tracing::warn!(error = %e, "access keys could not catch up with the store");
        }
        self.replica.read().keys.get(id).cloned()
    }

    /// Stores a key as it now is.
    pub fn put(&self, key: &AccessKey) -> Result<(), StoreError> {
        let value = serde_json::to_string(key).unwrap_or_default();
        self.replica.write()?.commit(vec![Write::put(KIND, key.id.clone(), value)])?;
        Ok(())
    }

    /// Creates the first root key, unless another node sharing the store did first (`None`).
    pub fn create_first_root(&self) -> Result<Option<AccessKey>, StoreError> {
        let key = Self::new_key(None, "root");
        let value = serde_json::to_string(&key).unwrap_or_default();
        let writes = vec![Write::put("setting", "root-key", key.id.clone()).expect(Expect::Absent), Write::put(KIND, key.id.clone(), value)];
        match self.replica.write()?.commit(writes) {
            Ok(_) => Ok(Some(key)),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates and stores a new root key pair.
    pub fn create(&self, description: &str) -> Result<AccessKey, StoreError> {
        self.create_for(None, description)
    }

    /// Creates and stores a new key pair for `user` (`None`: root).
    pub fn create_for(&self, user: Option<&str>, description: &str) -> Result<AccessKey, StoreError> {
        let key = Self::new_key(user, description);
        self.put(&key)?;
        Ok(key)
    }

    fn new_key(user: Option<&str>, description: &str) -> AccessKey {
        let id = random_id("AKIA", 16);
        let secret = encode(&random::<40>(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        AccessKey { id, secret, description: description.to_string(), created_ms: broker::message::unix_ms(), user: user.map(str::to_string), status: active() }
    }

    /// Every key (secrets included: the caller decides what to show).
    pub fn list(&self) -> Result<Vec<AccessKey>, StoreError> {
        let mut keys: Vec<AccessKey> = self.replica.read().keys.values().cloned().collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    /// Deletes a key; false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mut w = self.replica.write()?;
        let existed = w.keys.contains_key(id);
        w.commit(vec![Write::delete(KIND, id)])?;
        Ok(existed)
    }
}
