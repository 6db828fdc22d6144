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
//! commits its documents, then applies them to memory, then marks stale the decision caches of
//! the connections that depend on the changed documents ([`dependents`]). No HTTP here:
//! `api::iot` maps requests onto this.

mod attach;
mod authorizers;
mod cas;
mod certs;
pub mod connect;
mod dependents;
pub mod custom;
pub mod denials;
mod error;
mod policies;
mod state;
mod tags;
pub mod verifier;

pub use attach::{AuthInfo, AuthResult, EffectivePolicy, Target};
pub use authorizers::{Authorizer, AuthorizerUpdate, NewAuthorizer};
pub use custom::{AuthRequest, AuthorizerAnswer, CustomAuthenticator, MqttContext};
pub use cas::{CaUpdate, NewCa};
pub use certs::CreatedKeys;
pub use connect::{CertAuthenticator, LocalPolicy};
pub use denials::Denials;
pub use tags::TAGGABLE;
pub use error::{AuthzError, Result};
pub use policies::MAX_VERSIONS;
pub use state::{CaCertificate, CertStatus, Certificate, Policy, PolicyVersion};

use identity::Pki;
use registry::Registry;
use state::{Change, State};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::Documents;
use store::replica::{ReadGuard, Replica, WriteGuard};

/// The service's writer (its replica's, caught up).
pub(crate) type Writer<'a> = WriteGuard<'a, State>;

/// Settings the service needs.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// ARNs are `arn:aws:iot:{region}:{account_id}:...`.
    pub region: String,
    pub account_id: String,
}

pub use awscore::page::Page;

pub(crate) use awscore::clock::now_ms;
pub(crate) use awscore::id::random_hex;

/// What every applied change — committed here or on another node — sets off: decisions
/// recomputed, the TLS verifier rebuilt, connections of certificates that stopped being ACTIVE
/// dropped.
struct Reactions {
    /// The connections whose decisions depend on each document (policies, attachments,
    /// certificates; things and groups from the registry's changes).
    dependents: dependents::Dependents,
    /// Bumped when the set of ACTIVE CA certificates changes (the TLS verifier rebuilds).
    trust_generation: AtomicU64,
    broker: Option<broker::Broker>,
}

impl Reactions {
    fn applied(&self, replica: &Replica<State>, changes: &[store::state::Change]) {
        let mut trust = false;
        let mut gone: Vec<String> = Vec::new();
        for c in changes {
            match (c.kind.as_str(), c.value.as_deref()) {
                (state::CERT, value) => {
                    trust = true;
                    let active = value.and_then(|v| serde_json::from_str::<Certificate>(v).ok()).is_some_and(|cert| cert.status == CertStatus::Active);
                    if !active {
                        gone.push(c.key.clone());
                    }
                }
                (state::CA, value) => {
                    trust = true;
                    let active = value.and_then(|v| serde_json::from_str::<CaCertificate>(v).ok()).is_some_and(|ca| ca.active);
                    if !active {
                        gone.extend(replica.read().certs.values().filter(|cert| cert.ca_id.as_deref() == Some(c.key.as_str())).map(|cert| cert.id.clone()));
                    }
                }
                _ => {}
            }
        }
        if trust {
            self.trust_generation.fetch_add(1, Ordering::AcqRel);
        }
        self.dependents.changed(changes.iter().map(|c| dependents::key(&c.kind, &c.key)));
        self.disconnect(gone);
    }

    /// Disconnects the live connections of these certificates (MQTT 5: DISCONNECT 0x87), now
    /// and once more shortly after, for a connection that passed its CONNECT check while the
    /// status was changing.
    fn disconnect(&self, cert_ids: Vec<String>) {
        let Some(broker) = self.broker.clone() else { return };
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

/// Forgets the attachments of deleted targets, again on a conflict with another node's commit.
fn forget(replica: &Replica<State>, targets: &[String]) {
    for attempt in 1..=3 {
        match attach::forget_targets(replica, targets) {
            Ok(()) => return,
            Err(e) => tracing::warn!(attempt, error = %e, "policy attachments of deleted thing groups not forgotten yet"),
        }
    }
}

/// What the service reaches beyond its store, given when it is wired (`ferrite`'s
/// `platform.rs`); none in tests that need neither.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Disconnects the live connections of a certificate that stops being ACTIVE (or whose CA
    /// does), and custom-authorized connections when their time is up.
    pub broker: Option<broker::Broker>,
    /// The functions custom authorizers invoke.
    pub functions: Option<Arc<functions::Functions>>,
}

/// The certificate and policy service.
pub struct Authz {
    config: AuthzConfig,
    registry: Arc<Registry>,
    pki: Arc<Pki>,
    replica: Arc<Replica<State>>,
    reactions: Arc<Reactions>,
    /// The functions custom authorizers invoke.
    functions: Option<Arc<functions::Functions>>,
    denials: Arc<Denials>,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Authz {
    /// Loads certificates, CA certificates, policies and attachments: a replica of the state
    /// store's `authz` domain, reacting to its changes and to the registry's. Blocking.
    pub fn open(docs: Arc<Documents>, config: AuthzConfig, registry: Arc<Registry>, pki: Arc<Pki>, links: Links) -> Result<Authz> {
        let replica = Replica::<State>::open(docs.state().clone()).map_err(store::StoreError::from)?;
        {
            let state = replica.read();
            tracing::info!(
                certificates = state.certs.len(),
                ca_certificates = state.cas.len(),
                policies = state.policies.len(),
                "certificates and policies loaded"
            );
        }
        let reactions = Arc::new(Reactions { dependents: Default::default(), trust_generation: AtomicU64::new(1), broker: links.broker });
        let (r, weak) = (reactions.clone(), Arc::downgrade(&replica));
        replica.subscribe(Box::new(move |changes| {
            if let Some(replica) = weak.upgrade() {
                r.applied(&replica, changes);
            }
        }));
        // Thing attributes, groups and principals enter decisions; a deleted thing group's
        // attachments go with it, whoever deleted it (committed on this node: before the
        // deletion's commit returns; on another: as it is applied here, committing nothing
        // when that node already forgot them).
        // (Weak: the registry's replica holds this subscriber.)
        let (r, weak, reg) = (reactions.clone(), Arc::downgrade(&replica), Arc::downgrade(&registry));
        registry.replica().subscribe(Box::new(move |changes| {
            r.dependents.changed(changes.iter().map(|c| dependents::key(&c.kind, &c.key)));
            let Some(registry) = reg.upgrade() else { return };
            let gone: Vec<String> =
                changes.iter().filter(|c| c.kind == registry::THING_GROUP_KIND && c.value.is_none()).map(|c| registry.arn(registry::ResourceKind::ThingGroup, &c.key)).collect();
            if let (false, Some(replica)) = (gone.is_empty(), weak.upgrade()) {
                forget(&replica, &gone);
            }
        }));
        // Attachments of groups deleted while no node could forget them (a crash in between),
        // against the registry as it is now.
        registry.replica().catch_up().map_err(store::StoreError::from)?;
        let orphans: Vec<String> = {
            let st = replica.read();
            let groups = st.targets.keys().filter_map(|t| registry.parse_arn(t).filter(|(k, _)| *k == registry::ResourceKind::ThingGroup).map(|(_, n)| (t.clone(), n)));
            groups.filter(|(t, n)| *t == registry.arn(registry::ResourceKind::ThingGroup, n) && registry.describe_thing_group(n).is_err()).map(|(t, _)| t).collect()
        };
        if !orphans.is_empty() {
            tracing::info!(targets = orphans.len(), "forgetting the policy attachments of deleted thing groups");
            forget(&replica, &orphans);
        }
        Ok(Authz {
            config,
            registry,
            pki,
            replica,
            reactions,
            functions: links.functions,
            denials: Arc::new(Denials::default()),
        })
    }

    /// Applies what other nodes commit (certificates, policies, attachments, and the registry's
    /// things and groups) as it is committed. Call inside a Tokio runtime.
    pub fn follow(&self) {
        self.replica.follow();
        self.registry.replica().follow();
    }

    /// The denial counters.
    pub fn denials(&self) -> &Arc<Denials> {
        &self.denials
    }

    /// The thing registry this service asks.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn dependents(&self) -> &dependents::Dependents {
        &self.reactions.dependents
    }

    pub(crate) fn trust_generation(&self) -> u64 {
        self.reactions.trust_generation.load(Ordering::Acquire)
    }

    /// The service's state as of now, for reading.
    pub(crate) fn read(&self) -> ReadGuard<'_, State> {
        self.replica.read()
    }

    /// This process's writer, caught up with every node's commits.
    fn lock(&self) -> Result<Writer<'_>> {
        Ok(self.replica.write().map_err(store::StoreError::from)?)
    }

    /// Commits the changes with the revisions the writer saw (a conflict: another node changed
    /// them first; the caller runs again) and applies them; the reactions follow.
    fn commit(&self, st: &mut Writer<'_>, changes: Vec<Change>) -> Result<()> {
        let ops = changes.iter().map(Change::doc_op).collect::<Result<Vec<_>>>()?;
        st.commit_docs(&ops).map_err(store::StoreError::from)?;
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
        let authz = Arc::new(Authz::open(docs, config, registry, Arc::new(pki), Links::default()).unwrap());
        Fixture { dir, authz }
    }

    impl Fixture {
        /// The same database opened again (a restart).
        pub fn reopen(&self) -> Authz {
            let docs = Arc::new(Documents::open(&self.dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
            let config = AuthzConfig { region: "us-east-1".into(), account_id: "123456789012".into() };
            Authz::open(docs, config, self.authz.registry.clone(), self.authz.pki.clone(), Links::default()).unwrap()
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
        let p = Page::sorted(items.clone(), key, true, None, 3);
        assert_eq!(p.items, [0, 1, 2]);
        let p = Page::sorted(items.clone(), key, true, p.next.as_deref(), 5);
        assert_eq!((p.items, p.next), (vec![3, 4, 5, 6], None));
        let p = Page::sorted(items.clone(), key, false, None, 3);
        assert_eq!(p.items, [6, 5, 4]);
        let p = Page::sorted(items, key, false, p.next.as_deref(), 3);
        assert_eq!(p.items, [3, 2, 1]);
    }
}
