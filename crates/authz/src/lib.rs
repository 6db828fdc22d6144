//! Device identity and authorization, as AWS IoT does them: device and CA certificates
//! (issued by Ferrite's CA or registered), AWS IoT policies with versions, their attachments to
//! certificates and thing groups, and the broker side — an [`Authenticator`](broker::auth::Authenticator)
//! for the TLS listeners that admits registered ACTIVE certificates and answers every publish,
//! subscribe and receive from the attached policies ([`connect`]), the TLS client certificate
//! verifier over the current CA and certificate sets ([`verifier`]), the local policy of the
//! loopback listeners, custom authorizers invoking Ferrite functions ([`custom`]), and the
//! denial counters ([`denials`]).
//!
//! State lives in memory behind one mutex and is written through to `store::Documents` (kinds
//! `certificate`, `ca-certificate`, `policy`, `policy-target`, `authorizer`, `authz-setting`): an operation
//! commits its documents, then applies them to memory, then bumps the generation that every
//! connection's decision cache compares against. No HTTP here: `api::iot` maps requests onto this.

mod attach;
mod authorizers;
mod cas;
mod certs;
pub mod connect;
pub mod custom;
pub mod denials;
mod error;
mod policies;
mod state;
pub mod verifier;

pub use attach::{AuthInfo, AuthResult, EffectivePolicy, Target};
pub use authorizers::{Authorizer, AuthorizerUpdate, NewAuthorizer};
pub use custom::{AuthRequest, AuthorizerAnswer, CustomAuthenticator, MqttContext};
pub use cas::{CaUpdate, NewCa};
pub use certs::CreatedKeys;
pub use connect::{CertAuthenticator, LocalPolicy};
pub use denials::Denials;
pub use error::{AuthzError, Result};
pub use policies::MAX_VERSIONS;
pub use state::{CaCertificate, CertStatus, Certificate, Policy, PolicyVersion};

use identity::Pki;
use registry::Registry;
use state::{Change, State};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::Documents;

/// Settings the service needs.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// ARNs are `arn:aws:iot:{region}:{account_id}:...`.
    pub region: String,
    pub account_id: String,
}

/// A page of a list: the items and the key of the last one when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The key to continue after (`None`: this is the last page).
    pub next: Option<String>,
}

/// Pages `items` ordered by `key` (ascending or descending), after the key `after`.
pub(crate) fn page<T>(mut items: Vec<T>, key: impl Fn(&T) -> String, ascending: bool, after: Option<&str>, limit: usize) -> Page<T> {
    items.sort_by_key(|i| key(i));
    if !ascending {
        items.reverse();
    }
    let mut rest = items.into_iter().filter(|i| after.is_none_or(|a| if ascending { key(i).as_str() > a } else { key(i).as_str() < a })).peekable();
    let mut out = Vec::new();
    while out.len() < limit {
        match rest.next() {
            Some(i) => out.push(i),
            None => break,
        }
    }
    let next = if rest.peek().is_some() { out.last().map(&key) } else { None };
    Page { items: out, next }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // SystemRandom only fails without an OS entropy source, which Ferrite cannot run without.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The certificate and policy service.
pub struct Authz {
    docs: Arc<Documents>,
    config: AuthzConfig,
    registry: Arc<Registry>,
    pki: Arc<Pki>,
    state: Mutex<State>,
    /// Bumped by every change that may change a decision (policies, attachments, certificate
    /// status, thing attributes and groups through [`Authz::invalidate`]).
    generation: AtomicU64,
    /// Bumped when the set of ACTIVE CA certificates changes (the TLS verifier rebuilds).
    trust_generation: AtomicU64,
    broker: OnceLock<broker::Broker>,
    /// The functions custom authorizers invoke.
    functions: OnceLock<Arc<functions::Functions>>,
    denials: Arc<Denials>,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Authz {
    /// Loads certificates, CA certificates, policies and attachments from the documents table.
    pub fn open(docs: Arc<Documents>, config: AuthzConfig, registry: Arc<Registry>, pki: Arc<Pki>) -> Result<Authz> {
        let state = State::load(&docs)?;
        tracing::info!(
            certificates = state.certs.len(),
            ca_certificates = state.cas.len(),
            policies = state.policies.len(),
            "certificates and policies loaded"
        );
        Ok(Authz {
            docs,
            config,
            registry,
            pki,
            state: Mutex::new(state),
            generation: AtomicU64::new(1),
            trust_generation: AtomicU64::new(1),
            broker: OnceLock::new(),
            functions: OnceLock::new(),
            denials: Arc::new(Denials::default()),
        })
    }

    /// Lets the service disconnect the live connections of a certificate that stops being
    /// ACTIVE (or whose CA does).
    pub fn set_broker(&self, broker: broker::Broker) {
        let _ = self.broker.set(broker);
    }

    /// The denial counters.
    pub fn denials(&self) -> &Arc<Denials> {
        &self.denials
    }

    /// The thing registry this service asks.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The current decision generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Tells every connection to recompute its decisions (a thing, its attributes, its groups
    /// or its principals changed).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn trust_generation(&self) -> u64 {
        self.trust_generation.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the changes in one transaction, then applies them and bumps the generation.
    fn commit(&self, st: &mut State, changes: Vec<Change>) -> Result<()> {
        let ops = changes.iter().map(Change::doc_op).collect::<Result<Vec<_>>>()?;
        if !ops.is_empty() {
            self.docs.apply(&ops)?;
        }
        let trust = changes.iter().any(|c| matches!(c, Change::Ca(_) | Change::DropCa(_) | Change::Cert(_) | Change::DropCert(_)));
        for c in changes {
            st.apply(c);
        }
        if trust {
            self.trust_generation.fetch_add(1, Ordering::AcqRel);
        }
        self.invalidate();
        Ok(())
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.config.region, self.config.account_id)
    }

    /// `arn:aws:iot:{region}:{account}:cert/{id}`.
    pub fn cert_arn(&self, id: &str) -> String {
        self.arn("cert", id)
    }

    /// `arn:aws:iot:{region}:{account}:cacert/{id}`.
    pub fn ca_arn(&self, id: &str) -> String {
        self.arn("cacert", id)
    }

    /// `arn:aws:iot:{region}:{account}:policy/{name}`.
    pub fn policy_arn(&self, name: &str) -> String {
        self.arn("policy", name)
    }

    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// The ARN prefix of data-plane resources (`arn:aws:iot:{region}:{account}:`).
    pub(crate) fn resource_prefix(&self) -> String {
        format!("arn:aws:iot:{}:{}:", self.config.region, self.config.account_id)
    }

    /// Disconnects the live connections of these certificates (MQTT 5: DISCONNECT 0x87), now
    /// and once more shortly after, for a connection that passed its CONNECT check while the
    /// status was changing.
    fn disconnect(&self, cert_ids: Vec<String>) {
        let Some(broker) = self.broker.get().cloned() else { return };
        if cert_ids.is_empty() {
            return;
        }
        for id in &cert_ids {
            let n = broker.disconnect_principal(id);
            if n > 0 {
                tracing::info!(certificate = %id, connections = n, "certificate no longer active: disconnected");
            }
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                for id in &cert_ids {
                    broker.disconnect_principal(id);
                }
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A service over a fresh database and CA.

    use super::*;
    use std::sync::atomic::AtomicUsize;

    static N: AtomicUsize = AtomicUsize::new(0);

    pub struct Fixture {
        pub dir: std::path::PathBuf,
        pub authz: Arc<Authz>,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub fn fixture() -> Fixture {
        let dir = std::env::temp_dir().join(format!("ferrite-authz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let docs = Arc::new(Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
        let rc = registry::RegistryConfig { region: "us-east-1".into(), account_id: "123456789012".into(), thing_type_delete_delay: Duration::from_secs(0) };
        let registry = Arc::new(Registry::open(docs.clone(), rc, Arc::new(registry::NoEvents)).unwrap());
        let (pki, _) = Pki::load_or_create(&dir).unwrap();
        let config = AuthzConfig { region: "us-east-1".into(), account_id: "123456789012".into() };
        let authz = Arc::new(Authz::open(docs, config, registry, Arc::new(pki)).unwrap());
        Fixture { dir, authz }
    }

    impl Fixture {
        /// The same database opened again (a restart).
        pub fn reopen(&self) -> Authz {
            let docs = Arc::new(Documents::open(&self.dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
            let config = AuthzConfig { region: "us-east-1".into(), account_id: "123456789012".into() };
            Authz::open(docs, config, self.authz.registry.clone(), self.authz.pki.clone()).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_both_ways() {
        let items: Vec<u32> = (0..7).collect();
        let key = |i: &u32| format!("{i:03}");
        let p = page(items.clone(), key, true, None, 3);
        assert_eq!(p.items, [0, 1, 2]);
        let p = page(items.clone(), key, true, p.next.as_deref(), 5);
        assert_eq!((p.items, p.next), (vec![3, 4, 5, 6], None));
        let p = page(items.clone(), key, false, None, 3);
        assert_eq!(p.items, [6, 5, 4]);
        let p = page(items, key, false, p.next.as_deref(), 3);
        assert_eq!(p.items, [3, 2, 1]);
    }
}
