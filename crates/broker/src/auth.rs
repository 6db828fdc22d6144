//! Authentication and authorization hooks: each listener has an [`Authenticator`] that decides
//! on CONNECT and returns an [`Authorization`] the connection asks before every PUBLISH,
//! SUBSCRIBE (per filter), delivery (Receive) and retained publish. The policy language lives
//! elsewhere; the broker only asks.

use crate::server::PeerInfo;
use mqtt::ReasonCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a client presented on CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct ConnectInfo<'a> {
    pub peer: &'a PeerInfo,
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// The result of authenticating a CONNECT: the connection's rights, or the CONNACK reason.
pub type ConnectResult = Result<Arc<dyn Authorization>, ReasonCode>;

/// Decides whether a client may connect (possibly asking a remote authorizer).
pub trait Authenticator: Send + Sync + 'static {
    fn connect<'a>(&'a self, info: ConnectInfo<'a>) -> Pin<Box<dyn Future<Output = ConnectResult> + Send + 'a>>;
}

/// What a connection asks permission for (besides connecting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// PUBLISH to a topic.
    Publish,
    /// PUBLISH with RETAIN to a topic (asked in addition to `Publish`).
    Retain,
    /// SUBSCRIBE to a filter.
    Subscribe,
    /// Receive a message on a topic.
    Receive,
}

/// One connection's rights, asked on every action. Implementations cache their decisions and
/// notice policy changes themselves.
pub trait Authorization: Send + Sync + 'static {
    /// Whether the connection may do `access` on `what` (a topic name, or a filter for `Subscribe`).
    fn allows(&self, access: Access, what: &str) -> bool;
    fn can_publish(&self, topic: &str) -> bool {
        self.allows(Access::Publish, topic)
    }
    fn can_retain(&self, topic: &str) -> bool {
        self.allows(Access::Retain, topic)
    }
    fn can_subscribe(&self, filter: &str) -> bool {
        self.allows(Access::Subscribe, filter)
    }
    fn can_receive(&self, topic: &str) -> bool {
        self.allows(Access::Receive, topic)
    }
    /// The principal (certificate id, or authorizer principal) the connection acts as.
    fn principal(&self) -> Option<&str> {
        None
    }
    /// Counts a denial (Device Defender reads these counts).
    fn denied(&self, _action: &'static str) {}
}

/// Allows everything: the loopback development listener's default and in-process clients.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorization for AllowAll {
    fn allows(&self, _: Access, _: &str) -> bool {
        true
    }
}

impl AllowAll {
    /// One shared instance: connections allowed everything hold no authorization state of
    /// their own (memory per connection).
    pub fn shared() -> Arc<dyn Authorization> {
        static SHARED: std::sync::OnceLock<Arc<dyn Authorization>> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| Arc::new(AllowAll)).clone()
    }
}

impl Authenticator for AllowAll {
    fn connect<'a>(&'a self, _: ConnectInfo<'a>) -> Pin<Box<dyn Future<Output = ConnectResult> + Send + 'a>> {
        Box::pin(async { Ok(AllowAll::shared()) })
    }
}
