//! The AWS-compatible HTTP API: the only crate that knows HTTP and AWS's JSON wire shapes.
//!
//! Requests are verified with SigV4 ([`identity::sigv4`]) against [`Keys`], matched by the
//! credential scope's service name and then method and path (or `X-Amz-Target`, or `Action`)
//! to an operation of AWS's models ([`awsmodel`]), authorized by IAM, bound and validated
//! against the operation's input shape, and handed to the [`Service`] that answers that model;
//! an operation no service answers gets 501 NotImplementedException. Answers follow the
//! model's protocol (`x-amzn-RequestId`, `x-amzn-ErrorType`, `__type`, XML for IAM and STS).
//! `/healthz`, `/readyz` and `/metrics` need no signature.

mod error;
mod http;
mod input;
pub mod iam;
pub mod iot;
pub mod iotdata;
pub mod lambda;
mod keys;
pub mod metrics;
pub mod pagination;
pub mod service;

pub use error::ApiError;
pub use http::serve;
pub use input::Input;
pub use keys::{AccessKey, Keys};
pub use metrics::{ApiMetrics, MetricsSource};
pub use service::{ApiRequest, ApiResponse, Body, BoxReply, Reply, Service};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// The region requests must be signed for (the credential scope's region).
    pub region: String,
    /// The account ARNs name (IAM users, authorization decisions).
    pub account_id: String,
    /// How long a client has to send a request's body once its headers are in (408 beyond).
    pub body_timeout: std::time::Duration,
    /// Connections served at once per listener; more are closed at once.
    pub max_connections: usize,
    /// Bytes of request bodies being read before their signature is checked, across all
    /// connections; a request that would exceed it is refused with 429 before its body is read.
    pub max_pending_body_bytes: usize,
    /// Whether `/metrics` is served to peers other than loopback ones.
    pub metrics_from_anywhere: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1024 * 1024,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            body_timeout: std::time::Duration::from_secs(30),
            max_connections: 1024,
            max_pending_body_bytes: 64 * 1024 * 1024,
            metrics_from_anywhere: false,
        }
    }
}

/// The API: the models' routers, services by model, keys, metrics.
pub struct Api {
    /// Every model's operations, by signing name.
    routers: HashMap<&'static str, awsmodel::route::Router>,
    /// The service answering each model, by botocore name.
    services: HashMap<&'static str, Arc<dyn Service>>,
    keys: Arc<Keys>,
    users: Arc<iam::Users>,
    config: ApiConfig,
    metrics: ApiMetrics,
    sources: Vec<Arc<dyn MetricsSource>>,
    ready: AtomicBool,
    /// Permits of 1 KiB each for bodies being read before authentication
    /// ([`ApiConfig::max_pending_body_bytes`]).
    body_budget: Arc<tokio::sync::Semaphore>,
}

impl Api {
    /// An API serving IAM (users, their keys and policies) and STS; other services are added.
    pub fn new(keys: Keys, config: ApiConfig) -> Api {
        let body_budget = Arc::new(tokio::sync::Semaphore::new(config.max_pending_body_bytes.div_ceil(1024).min(tokio::sync::Semaphore::MAX_PERMITS)));
        let keys = Arc::new(keys);
        let users = Arc::new(iam::Users::new(keys.docs().clone()));
        let mut by_signing: HashMap<&'static str, Vec<&'static awsmodel::Service>> = HashMap::new();
        for &model in awsmodel::generated::ALL {
            by_signing.entry(model.signing_name).or_default().push(model);
        }
        let routers = by_signing.into_iter().map(|(name, models)| (name, awsmodel::route::Router::new(&models))).collect();
        let mut api = Api {
            routers,
            services: HashMap::new(),
            keys: keys.clone(),
            users: users.clone(),
            config,
            metrics: ApiMetrics::default(),
            sources: Vec::new(),
            ready: AtomicBool::new(false),
            body_budget,
        };
        let account = api.config.account_id.clone();
        api.add(Arc::new(iam::Iam::new(keys.clone(), users, &account)));
        api.add(Arc::new(iam::Sts::new(keys, &account)));
        api
    }

    /// Adds a service: it answers the operations of its models. A model already answered by
    /// another service keeps that one (a wiring mistake, logged).
    pub fn add(&mut self, service: Arc<dyn Service>) {
        for &model in service.models() {
            if awsmodel::service(model).is_none() {
                tracing::error!(model, "a service names a model that is not in models/");
            }
            if self.services.contains_key(model) {
                tracing::error!(model, "two services answer one model; the first one is kept");
                debug_assert!(false, "two services answer the model {model}");
                continue;
            }
            self.services.insert(model, service.clone());
        }
    }

    /// Adds lines to `/metrics`.
    pub fn add_metrics(&mut self, source: Arc<dyn MetricsSource>) {
        self.sources.push(source);
    }

    /// Marks the platform ready (`/readyz` answers 200 from then on).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn render_metrics(&self) -> String {
        let mut out = String::new();
        for s in &self.sources {
            s.render(&mut out);
        }
        self.metrics.render(&mut out);
        out
    }
}
