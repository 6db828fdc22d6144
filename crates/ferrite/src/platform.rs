//! Wiring the platform together: the store's documents, the AWS identity (region, account),
//! access keys, the thing registry, and the API services over the broker.

use crate::config::Config;
use anyhow::Context;
use api::{Api, ApiConfig, Keys};
use registry::{Registry, RegistryConfig};
use std::sync::Arc;
use std::time::Duration;
use store::{DocOp, Documents};

/// The AWS identity ARNs are built from.
#[derive(Debug, Clone)]
pub struct Identity {
    pub region: String,
    pub account_id: String,
    pub endpoint_host: String,
}

/// Opens the documents table of the data directory's database.
pub fn documents(config: &Config) -> anyhow::Result<Arc<Documents>> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = config.data_dir.join("ferrite.db");
    Ok(Arc::new(Documents::open(&db, config.store.sync.mode()).with_context(|| format!("opening {}", db.display()))?))
}

/// The region and account: the configured account id, or the one generated on first start.
pub fn identity(config: &Config, docs: &Documents) -> anyhow::Result<Identity> {
    let account_id = if !config.aws.account_id.is_empty() {
        config.aws.account_id.clone()
    } else if let Some(id) = docs.get("setting", "account-id")? {
        id
    } else {
        let mut b = [0u8; 12];
        random_fill(&mut b);
        let id: String = b.iter().map(|x| char::from(b'0' + x % 10)).collect();
        docs.apply(&[DocOp::Put { kind: "setting", key: "account-id".into(), value: id.clone() }])?;
        tracing::info!(account_id = %id, "generated the account id");
        id
    };
    Ok(Identity { region: config.aws.region.clone(), account_id, endpoint_host: config.aws.endpoint_host.clone() })
}

fn random_fill(b: &mut [u8]) {
    use std::io::Read;
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(b));
}

/// Creates the root access key on first start; returns it when it was created now.
pub fn first_start_keys(keys: &Keys) -> anyhow::Result<Option<api::AccessKey>> {
    if !keys.list()?.is_empty() {
        return Ok(None);
    }
    Ok(Some(keys.create("root")?))
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

/// The API with every service Ferrite offers (call inside the Tokio runtime: the registry's
/// event publisher is a task).
pub fn api(config: &Config, docs: Arc<Documents>, identity: &Identity, broker: &broker::Broker) -> anyhow::Result<Api> {
    let events = api::iot::BrokerEvents::start(broker.clone());
    let registry = Arc::new(registry(config, docs.clone(), identity, events.clone())?);
    let mut api = Api::new(Keys::new(docs.clone()), ApiConfig { max_body_bytes: config.api.max_body_bytes });
    let shadows = shadow_service::Shadows::load(docs.clone(), broker.clone(), shadow::Limits::default())?;
    tokio::spawn(shadows.clone().serve_mqtt(broker.internal_client("$ferrite/shadow")));
    api.add(Arc::new(api::iotdata::IotData::new(broker.clone(), shadows)));
    api.add(Arc::new(api::iot::Iot::new(registry, identity.endpoint_host.clone())));
    api.add_metrics(Arc::new(api::metrics::BrokerMetrics(broker.clone())));
    api.add_metrics(events);
    Ok(api)
}
