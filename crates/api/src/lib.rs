//! The AWS-compatible HTTP API: the only crate that knows HTTP and AWS's JSON wire shapes.
//!
//! Requests are verified with SigV4 ([`identity::sigv4`]) against [`Keys`], dispatched by the
//! credential scope's service name to a [`Service`], matched to an operation by method and path
//! template, and answered in rest-json (`x-amzn-RequestId`, `x-amzn-ErrorType`). `/healthz`,
//! `/readyz` and `/metrics` need no signature.

mod error;
mod http;
pub mod iot;
pub mod iotdata;
pub mod lambda;
mod keys;
pub mod metrics;
pub mod pagination;
pub mod service;

pub use error::ApiError;
pub use http::serve;
pub use keys::{AccessKey, Keys};
pub use metrics::{ApiMetrics, MetricsSource};
pub use service::{ApiRequest, ApiResponse, Body, BoxReply, Reply, Route, Service};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
}

/// The API: services by signing name, keys, metrics.
pub struct Api {
    services: HashMap<&'static str, Arc<dyn Service>>,
    keys: Keys,
    config: ApiConfig,
    metrics: ApiMetrics,
    sources: Vec<Arc<dyn MetricsSource>>,
    ready: AtomicBool,
}

impl Api {
    /// An API with no services yet.
    pub fn new(keys: Keys, config: ApiConfig) -> Api {
        Api { services: HashMap::new(), keys, config, metrics: ApiMetrics::default(), sources: Vec::new(), ready: AtomicBool::new(false) }
    }

    /// Adds a service, reachable by its signing name.
    pub fn add(&mut self, service: Arc<dyn Service>) {
        self.services.insert(service.signing_name(), service);
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
