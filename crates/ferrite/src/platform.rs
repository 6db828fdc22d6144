//! Wiring the platform together: the store's documents, the AWS identity (region, account),
//! Ferrite's CA, access keys, the thing registry, the certificate and policy service, and the
//! API services over the broker.

use crate::config::{BackendSetting, Config};
use anyhow::Context;
use api::{Api, Keys};
use registry::{Registry, RegistryConfig};
use std::sync::Arc;
use std::time::Duration;
use store::Documents;
use store::state::{Expect, Write};

/// The AWS identity ARNs are built from.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
    pub endpoint_host: String,
}

/// Opens the state store: `<data_dir>/state.db` (moving in the documents an earlier Ferrite
/// kept in `ferrite.db`), or the PostgreSQL database of `store.postgres_url`. Call inside a
/// multi-threaded Tokio runtime (the PostgreSQL connections are its tasks).
pub async fn documents(config: &Config) -> anyhow::Result<Arc<Documents>> {
    crate::datadir::secure(&config.data_dir)?;
    let state = match config.store.backend {
        BackendSetting::Sqlite => {
            let db = config.data_dir.join("state.db");
            crate::datadir::create_private_file(&db)?;
            let sqlite = store::state::Sqlite::open(&db, config.store.sync.mode()).with_context(|| format!("opening {}", db.display()))?;
            let legacy = config.data_dir.join("ferrite.db");
            let moved = sqlite.import_legacy(&legacy).with_context(|| format!("moving the documents of {} into {}", legacy.display(), db.display()))?;
            if moved > 0 {
                tracing::info!(documents = moved, from = %legacy.display(), to = %db.display(), "moved the documents into the state store");
            }
            store::state::StateStore::new(Arc::new(sqlite))
        }
        BackendSetting::Postgres => store::state::connect_postgres(&config.store.postgres_url, config.store.postgres_max_connections)
            .await
            .context("connecting to store.postgres_url")?,
    };
    tracing::info!(backend = state.backend(), "state store open");
    Ok(Arc::new(Documents::new(state)))
}

/// The region and account: the configured account id, or the one generated on first start.
pub fn identity(config: &Config, docs: &Documents) -> anyhow::Result<Identity> {
    let account_id = if !config.aws.account_id.is_empty() {
        config.aws.account_id.clone()
    } else {
        let mut b = [0u8; 12];
        random_fill(&mut b);
        let id: String = b.iter().map(|x| char::from(b'0' + x % 10)).collect();
        let (id, created) = once(docs, "account-id", id)?;
        if created {
            tracing::info!(account_id = %id, "generated the account id");
        }
        id
    };
    Ok(Identity { region: config.aws.region.clone(), account_id, endpoint_host: config.aws.endpoint_host.clone() })
}

/// The setting `key`, or `value` stored as it where there was none yet: of nodes starting
/// together on one database exactly one stores its value, and all of them use it. True when
/// this call stored it.
fn once(docs: &Documents, key: &str, value: String) -> anyhow::Result<(String, bool)> {
    if let Some(v) = docs.get("setting", key)? {
        return Ok((v, false));
    }
    let write = Write::put("setting", key, value.clone()).expect(Expect::Absent);
    match docs.state().commit_blocking(store::DOCUMENTS_DOMAIN, vec![write]) {
        Ok(_) => Ok((value, true)),
        Err(e) if e.is_conflict() => Ok((docs.get("setting", key)?.with_context(|| format!("setting {key} vanished"))?, false)),
        Err(e) => Err(e.into()),
    }
}

fn random_fill(b: &mut [u8]) {
    use std::io::Read;
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(b));
}

/// Creates the root access key on first start; returns it when it was created now (by this
/// node: of nodes starting together on one database, one creates it).
pub fn first_start_keys(keys: &Keys) -> anyhow::Result<Option<api::AccessKey>> {
    if !keys.list()?.is_empty() {
        return Ok(None);
    }
    Ok(keys.create_first_root()?)
}

/// The thing registry, loaded from the documents; its events go out through the broker.
pub fn registry(config: &Config, docs: Arc<Documents>, identity: &Identity, events: Arc<dyn registry::EventSink>) -> anyhow::Result<Registry> {
    let settings = RegistryConfig {
        region: identity.region.clone(),
        account_id: identity.account_id.clone(),
        thing_type_delete_delay: Duration::from_secs(config.registry.thing_type_delete_delay_secs),
    };
    Registry::open(docs, settings, events).context("loading the thing registry")
}

/// Ferrite's certificate authority: kept in the state store (setting `ca`), so that nodes on
/// one database share it, and in `<data_dir>/certs` (the server certificate is each node's own,
/// issued by it). Created on first start; a data directory with a CA of its own and a store
/// without one brings it in.
pub fn pki(config: &Config, docs: &Documents) -> anyhow::Result<Arc<identity::Pki>> {
    let dir = config.data_dir.join("certs");
    crate::datadir::create_private_dir(&dir)?;
    let stored = match docs.get("setting", "ca")? {
        Some(doc) => doc,
        None => {
            let (_, created) = identity::Pki::load_or_create(&dir)?;
            if created {
                tracing::info!(ca = %dir.join("ca.pem").display(), "created Ferrite's certificate authority");
            }
            let read = |name: &str| std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
            let ours = serde_json::json!({ "cert": read("ca.pem")?, "key": read("ca.key")? }).to_string();
            once(docs, "ca", ours)?.0
        }
    };
    let v: serde_json::Value = serde_json::from_str(&stored).context("the stored CA (setting ca) is not JSON")?;
    let (Some(cert), Some(key)) = (v["cert"].as_str(), v["key"].as_str()) else { anyhow::bail!("the stored CA (setting ca) lacks its cert or key") };
    if std::fs::read_to_string(dir.join("ca.pem")).ok().as_deref() != Some(cert) {
        // Another node's CA: take it, and issue this node's server certificate from it.
        for name in ["server.pem", "server.key"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        for (name, pem) in [("ca.key", key), ("ca.pem", cert)] {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            crate::datadir::create_private_file(&path)?;
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        tracing::info!(ca = %dir.join("ca.pem").display(), "using the certificate authority kept in the state store");
    }
    let (pki, _) = identity::Pki::load_or_create(&dir)?;
    Ok(Arc::new(pki))
}

/// The shadows as a rule's `get_thing_shadow()` reads them.
struct RuleShadows(Arc<shadow_service::Shadows>);

impl rules::ShadowReader for RuleShadows {
    fn get(&self, thing: &str, shadow: Option<&str>) -> Result<serde_json::Value, String> {
        self.0.get(thing, shadow)
    }
}

/// The services: the API and the certificate and policy service the TLS listeners ask.
pub struct Platform {
    pub api: Api,
    pub authz: Arc<authz::Authz>,
    pub rules: Arc<rules::Rules>,
}

/// The API with every service Ferrite offers (call inside the Tokio runtime: the registry's
/// event publisher is a task).
pub fn platform(config: &Config, docs: Arc<Documents>, identity: &Identity, broker: &broker::Broker, pki: Arc<identity::Pki>) -> anyhow::Result<Platform> {
    let events = api::iot::BrokerEvents::start(broker.clone());
    let registry = Arc::new(registry(config, docs.clone(), identity, events.clone())?);
    let settings = authz::AuthzConfig { region: identity.region.clone(), account_id: identity.account_id.clone() };
    let functions = functions(config, docs.clone(), identity);
    let links = authz::Links { broker: Some(broker.clone()), functions: Some(functions.clone()) };
    let authz = Arc::new(authz::Authz::open(docs.clone(), settings, registry, pki, links).context("loading certificates and policies")?);
    authz.follow();
    let keys = Keys::open(docs.clone()).context("loading access keys")?;
    keys.follow();
    let mut api = Api::new(keys, config.api.api_config(&identity.region, &identity.account_id));
    let node = crate::datadir::node_id(&config.data_dir)?;
    let shadows = shadow_service::Shadows::open(docs.clone(), broker.clone(), shadow::Limits::default(), &node, Default::default())?;
    shadows.follow();
    let shadow_runtime = shadows.clone().serve();
    let rules_settings = crate::rules_config::rules_config(&config.rules, &identity.region, &identity.account_id);
    let rules = rules::Rules::start(docs.clone(), broker.clone(), functions.clone(), Some(Arc::new(RuleShadows(shadows.clone()))), rules_settings).context("loading topic rules")?;
    rules.follow();
    api.add(Arc::new(api::iotdata::IotData::new(broker.clone(), shadows)));
    let iot = api::iot::Iot::new(authz.clone(), identity.endpoint_host.clone()).with_rules(rules.clone());
    broker.add_tap(iot.connectivity());
    api.add(Arc::new(iot));
    api.add(Arc::new(api::lambda::Lambda::new(functions)));
    api.add_metrics(Arc::new(api::iot::RulesMetrics(rules.clone())));
    api.add_metrics(Arc::new(api::metrics::BrokerMetrics(broker.clone())));
    api.add_metrics(Arc::new(api::metrics::ServiceMetrics("shadow", shadow_runtime)));
    api.add_metrics(events);
    api.add_metrics(Arc::new(api::iot::AuthzMetrics(authz.clone())));
    Ok(Platform { api, authz, rules })
}

/// The authenticator of a listener: the local policy on the plain (loopback) listeners, the
/// certificate authenticator on the TLS ones; custom authorizers in front of both.
pub fn authenticator(config: &Config, identity: &Identity, authz: &Arc<authz::Authz>, transport: &broker::server::Transport) -> anyhow::Result<Arc<dyn broker::auth::Authenticator>> {
    use broker::server::Transport;
    let (inner, tls): (Arc<dyn broker::auth::Authenticator>, bool) = match transport {
        Transport::Tcp | Transport::Ws => {
            let doc = &config.mqtt.local_policy;
            let policy = if doc == crate::config::ALLOW_ALL_POLICY { None } else { Some(identity::policy::parse(doc).context("mqtt.local_policy")?) };
            (Arc::new(authz::LocalPolicy::new(policy, &identity.region, &identity.account_id, authz.denials().clone())), false)
        }
        Transport::Tls(_) | Transport::Wss(_) => (Arc::new(authz::CertAuthenticator::new(authz.clone())), true),
    };
    Ok(Arc::new(authz::CustomAuthenticator::new(authz.clone(), inner, tls)))
}

/// Ferrite functions over the documents store (the server and `ferrite functions` share it).
pub fn functions(config: &Config, docs: Arc<Documents>, identity: &Identity) -> Arc<functions::Functions> {
    functions::Functions::new(docs, crate::rules_config::functions_config(&config.functions, &identity.region, &identity.account_id))
}

/// The base URL of the API as clients reach it (for topic rule destinations' `enableUrl`): the
/// plain HTTP listener if any, else the HTTPS one; an unspecified address is named by
/// `aws.endpoint_host`.
pub fn api_base_url(identity: &Identity, listeners: &[crate::listeners::ApiListener]) -> String {
    let Some(l) = listeners.iter().find(|l| l.tls.is_none()).or_else(|| listeners.first()) else { return String::new() };
    let scheme = if l.tls.is_some() { "https" } else { "http" };
    let host = if l.addr.ip().is_unspecified() { identity.endpoint_host.clone() } else { l.addr.ip().to_string() };
    format!("{scheme}://{host}:{}", l.addr.port())
}
