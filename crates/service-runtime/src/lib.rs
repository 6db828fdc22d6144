//! The keyed runtime of Ferrite's in-process services (shadows now; jobs, fleet provisioning,
//! Defender metrics and Events next): devices reach a service by publishing on its `$aws/...`
//! topics, and the runtime turns that stream into ordered, durable, bounded work.
//!
//! - **Durable intake**: the service's broker client is a durable in-process client
//!   ([`broker::Broker::durable_client`]): a QoS 1 request is stored before the device's PUBACK
//!   and acknowledged only together with the replies that answer it, so a request acknowledged
//!   to a device and then a crash is processed after the restart. A service that records the
//!   position of each request it applies ([`Request::seq`], per shard, in the same commit as its
//!   own writes) can tell a restored request it already applied, and so apply each once.
//! - **Sharded by key**: the service names each request's key (the thing name); a key's
//!   requests always go to the same of [`RuntimeConfig::shards`] shards ([`shard_of`], stable
//!   across restarts), each a task applying its requests in arrival order. `apply` runs on
//!   a Tokio worker: it may block briefly (a cache miss reading the store goes through
//!   `store::state::blocking`), not for long.
//! - **Batched replies**: a shard's publisher waits for what its requests wrote to be durable,
//!   then publishes all the replies of the requests it has and acknowledges them in one broker
//!   commit — no commit per message.
//! - **Throttling**: a shard holds at most [`RuntimeConfig::max_in_flight`] requests; past that
//!   a request is answered at once with the service's throttling rejection (AWS's 429) instead
//!   of being queued or dropped in silence.
//!
//! Replies may go to every subscriber or only to the requesting client
//! ([`broker::internal::Reply::only_to`]).

use broker::internal::{InternalClient, Reply};
use broker::message::Delivery;
use mqtt::QoS;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Requests taken from the intake at once.
const INTAKE_BATCH: usize = 1024;
/// Requests whose replies a shard publishes in one commit at most.
const REPLY_BATCH: usize = 512;

/// How a service runs.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Shards (tasks) requests are spread over by key. A service that records applied
    /// positions per shard keys them by this count too.
    pub shards: usize,
    /// Requests one shard holds (applied or waiting) before it answers with the throttling
    /// rejection.
    pub max_in_flight: usize,
}

impl Default for RuntimeConfig {
    /// One shard per core (at most 8), 10,000 requests in flight per shard.
    fn default() -> RuntimeConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RuntimeConfig { shards: cores.clamp(1, 8), max_in_flight: 10_000 }
    }
}

/// The shard of a key among `shards`: FNV-1a, the same in every build and every process.
pub fn shard_of(key: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// One request, as a shard sees it.
#[derive(Debug)]
pub struct Request {
    pub delivery: Delivery,
    pub shard: usize,
}

impl Request {
    /// The topic it was published on.
    pub fn topic(&self) -> &str {
        &self.delivery.msg.topic
    }

    /// Its payload.
    pub fn payload(&self) -> &[u8] {
        &self.delivery.msg.payload
    }

    /// The client id of the device that sent it (kept in the store with the request, so a
    /// request restored after a restart has it too).
    pub fn client_id(&self) -> Option<&Arc<str>> {
        self.delivery.msg.publisher.as_ref()
    }

    /// Its position in the durable intake (increasing, never repeated on one node; 0 when the
    /// intake is not stored: a QoS 0 request, or no store).
    pub fn seq(&self) -> u64 {
        self.delivery.seq
    }
}

/// The future of a request's replies.
pub type Replies<'a> = Pin<Box<dyn Future<Output = Vec<Reply>> + Send + 'a>>;

/// An in-process service the runtime runs.
pub trait Service: Send + Sync + 'static {
    /// What applying a request gave, until its writes are durable.
    type Applied: Send + 'static;

    /// The topic filters of its requests (subscribed at QoS 1).
    fn filters(&self) -> Vec<String>;

    /// The key of a request (requests of one key are applied in order); `None`: not a request
    /// of this service (acknowledged and ignored).
    fn key<'a>(&self, topic: &'a str) -> Option<&'a str>;

    /// Applies a request, on its shard's task (briefly blocking is fine; long waits belong in
    /// `settle`).
    fn apply(&self, req: &Request) -> Self::Applied;

    /// Waits until what `apply` wrote is durable and gives the replies.
    fn settle<'a>(&'a self, req: &'a Request, applied: Self::Applied) -> Replies<'a>;

    /// The replies to a request refused because its shard is saturated.
    fn throttled(&self, req: &Request) -> Vec<Reply>;
}

/// What the runtime counts.
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    /// Requests applied.
    pub requests: AtomicU64,
    /// Requests answered with the throttling rejection.
    pub throttled: AtomicU64,
}

/// Runs `service` on `client` until the Tokio runtime stops: subscribes its filters, then
/// takes requests, shards, applies and answers them. The client should be durable
/// ([`broker::Broker::durable_client`]) for requests to survive a crash.
pub fn serve<S: Service>(service: Arc<S>, client: InternalClient, config: RuntimeConfig) -> Arc<RuntimeMetrics> {
    let metrics = Arc::new(RuntimeMetrics::default());
    for f in service.filters() {
        if let Err(e) = client.subscribe(&f, QoS::AtLeastOnce) {
            tracing::error!(filter = %f, error = %e, client_id = client.client_id(), "service cannot subscribe");
        }
    }
    let client = Arc::new(client);
    let shards = config.shards.max(1);
    let in_flight: Arc<Vec<AtomicUsize>> = Arc::new((0..shards).map(|_| AtomicUsize::new(0)).collect());
    let mut inboxes = Vec::with_capacity(shards);
    for shard in 0..shards {
        // Bounded by the shard's in-flight count, which the intake checks before sending.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (done_tx, done_rx) = tokio::sync::mpsc::channel::<(Request, Option<S::Applied>)>(config.max_in_flight.max(1));
        let s = service.clone();
        let m = metrics.clone();
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                // A request that makes the service panic is acknowledged without replies
                // (and logged) rather than taking its shard down and coming back at every start.
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.apply(&req)));
                m.requests.fetch_add(1, Ordering::Relaxed);
                let applied = match applied {
                    Ok(a) => Some(a),
                    Err(_) => {
                        tracing::error!(shard, topic = req.topic(), "service failed on a request; acknowledged without an answer");
                        None
                    }
                };
                if done_tx.send((req, applied)).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(publish(service.clone(), client.clone(), done_rx, in_flight.clone(), shard));
        inboxes.push(tx);
    }
    tokio::spawn(intake(service, client, inboxes, in_flight, config.max_in_flight, metrics.clone()));
    metrics
}

/// Takes requests from the client and hands each to its key's shard, or answers it with the
/// throttling rejection when that shard is full.
async fn intake<S: Service>(
    service: Arc<S>,
    client: Arc<InternalClient>,
    inboxes: Vec<tokio::sync::mpsc::UnboundedSender<Request>>,
    in_flight: Arc<Vec<AtomicUsize>>,
    max_in_flight: usize,
    metrics: Arc<RuntimeMetrics>,
) {
    loop {
        let (mut refused, mut replies, mut acks) = (0u64, Vec::new(), Vec::new());
        for delivery in client.recv_many(INTAKE_BATCH).await {
            let Some(key) = service.key(&delivery.msg.topic) else {
                acks.push(delivery);
                continue;
            };
            let shard = shard_of(key, inboxes.len());
            let req = Request { delivery, shard };
            if in_flight[shard].load(Ordering::Acquire) >= max_in_flight {
                refused += 1;
                replies.extend(service.throttled(&req));
                acks.push(req.delivery);
                continue;
            }
            in_flight[shard].fetch_add(1, Ordering::AcqRel);
            if inboxes[shard].send(req).is_err() {
                tracing::error!(shard, client_id = client.client_id(), "service shard has stopped; request left for the next start");
                in_flight[shard].fetch_sub(1, Ordering::AcqRel);
            }
        }
        if refused > 0 {
            metrics.throttled.fetch_add(refused, Ordering::Relaxed);
            tracing::warn!(client_id = client.client_id(), requests = refused, "service saturated: requests answered with the throttling rejection");
        }
        if !replies.is_empty() || !acks.is_empty() {
            client.publish_all(replies, &acks).await;
        }
    }
}

/// A shard's publisher: in request order, waits for each applied request's writes, then
/// publishes the replies of everything it has and acknowledges those requests, in one commit.
async fn publish<S: Service>(
    service: Arc<S>,
    client: Arc<InternalClient>,
    mut done: tokio::sync::mpsc::Receiver<(Request, Option<S::Applied>)>,
    in_flight: Arc<Vec<AtomicUsize>>,
    shard: usize,
) {
    let mut batch = Vec::with_capacity(REPLY_BATCH);
    while done.recv_many(&mut batch, REPLY_BATCH).await > 0 {
        let mut replies = Vec::new();
        let mut acks = Vec::with_capacity(batch.len());
        let n = batch.len();
        for (req, applied) in batch.drain(..) {
            if let Some(applied) = applied {
                replies.extend(service.settle(&req, applied).await);
            }
            acks.push(req.delivery);
        }
        client.publish_all(replies, &acks).await;
        in_flight[shard].fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
