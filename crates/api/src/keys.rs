//! Access keys for SigV4: stored as documents (kind `access-key`), created on first start, by
//! `ferrite keys` (root keys) and by IAM's CreateAccessKey (a user's keys), read from the store
//! for every signed request (no cache). An Inactive key signs nothing.

use rand_bytes::random;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::{DocOp, Documents, StoreError};

const KIND: &str = "access-key";

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
    /// Keys stored in `docs`.
    pub fn new(docs: Arc<Documents>) -> Keys {
        Keys { docs }
    }

    /// The documents the keys are kept in.
    pub(crate) fn docs(&self) -> &Arc<Documents> {
        &self.docs
    }

    /// The secret of an Active access key id.
    pub fn secret(&self, id: &str) -> Option<String> {
        self.get(id).map(|k| k.secret)
    }

    /// An Active access key, read from the store (no cache: a key deleted or deactivated on any
    /// node stops working at once).
    pub fn get(&self, id: &str) -> Option<AccessKey> {
        self.load(id).filter(|k| k.status == "Active")
    }

    /// A key as stored, whatever its status.
    pub fn load(&self, id: &str) -> Option<AccessKey> {
        self.docs.get(KIND, id).ok().flatten().and_then(|v| serde_json::from_str::<AccessKey>(&v).ok())
    }

    /// Stores a key as it now is.
    pub fn put(&self, key: &AccessKey) -> Result<(), StoreError> {
        let value = serde_json::to_string(key).unwrap_or_default();
        self.docs.apply(&[DocOp::Put { kind: KIND, key: key.id.clone(), value }])?;
        Ok(())
    }

    /// Creates the first root key, unless another node sharing the store did first (`None`).
    pub fn create_first_root(&self) -> Result<Option<AccessKey>, StoreError> {
        let key = Self::new_key(None, "root");
        let value = serde_json::to_string(&key).unwrap_or_default();
        let writes = vec![
            store::state::Write::put("setting", "root-key", key.id.clone()).expect(store::state::Expect::Absent),
            store::state::Write::put(KIND, key.id.clone(), value),
        ];
        match self.docs.state().commit_blocking(store::DOCUMENTS_DOMAIN, writes) {
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
        Ok(self.docs.load(KIND)?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
    }

    /// Deletes a key; false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.docs.get(KIND, id)?.is_some();
        self.docs.apply(&[DocOp::Delete { kind: KIND, key: id.to_string() }])?;
        Ok(existed)
    }
}
