//! Configuration: defaults ← TOML file ← `FERRITE_*` environment ← command-line flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration. Every key has a default; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for Ferrite's files.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    pub mqtt: MqttConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    pub api: ApiSettings,
    pub aws: AwsConfig,
    pub registry: RegistrySettings,
    pub rules: crate::rules_config::RulesSettings,
    pub functions: crate::rules_config::FunctionsSettings,
}

/// The thing registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// Seconds a thing type must have been deprecated before DeleteThingType accepts it.
    pub thing_type_delete_delay_secs: u64,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings { thing_type_delete_delay_secs: 300 }
    }
}

/// The HTTP API and operations endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Plain HTTP (an address or "off").
    pub listen: String,
    /// HTTPS with the server certificate (an address or "off").
    pub tls_listen: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's body.
    pub body_timeout_secs: u64,
    /// Connections served at once per API listener.
    pub max_connections: usize,
    /// Bytes of request bodies being received before their signature is checked, all
    /// connections together.
    pub max_pending_body_bytes: usize,
    /// Serve /metrics to non-loopback peers too.
    pub metrics_from_anywhere: bool,
    /// Allow the plain-HTTP listener on a non-loopback address.
    pub allow_plaintext_remote: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        let a = api::ApiConfig::default();
        ApiSettings {
            listen: "127.0.0.1:8080".into(),
            tls_listen: "0.0.0.0:9443".into(),
            max_body_bytes: a.max_body_bytes,
            body_timeout_secs: a.body_timeout.as_secs(),
            max_connections: a.max_connections,
            max_pending_body_bytes: a.max_pending_body_bytes,
            metrics_from_anywhere: a.metrics_from_anywhere,
            allow_plaintext_remote: false,
        }
    }
}

impl ApiSettings {
    /// The API server's view of these settings, for requests signed for `region` in `account_id`.
    pub fn api_config(&self, region: &str, account_id: &str) -> api::ApiConfig {
        api::ApiConfig {
            max_body_bytes: self.max_body_bytes,
            region: region.to_string(),
            account_id: account_id.to_string(),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections,
            max_pending_body_bytes: self.max_pending_body_bytes,
            metrics_from_anywhere: self.metrics_from_anywhere,
        }
    }
}

/// The AWS identity Ferrite presents: ARNs and endpoints are built from these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    pub region: String,
    /// Twelve digits; empty: generated on first start and kept in the store.
    pub account_id: String,
    /// Host name devices and SDKs reach Ferrite at (DescribeEndpoint answers it).
    pub endpoint_host: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig { region: "us-east-1".into(), account_id: String::new(), endpoint_host: "localhost".into() }
    }
}
/// Certificates for the TLS listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain for the server; empty: Ferrite issues one from its own CA.
    pub cert_file: String,
    /// PEM private key matching `cert_file`.
    pub key_file: String,
    /// Names (DNS or IP) in the certificate Ferrite issues for itself.
    pub server_names: Vec<String>,
    /// `required`, `optional` or `none`: whether TLS clients must present a certificate.
    pub client_certs: ClientCerts,
    /// Extra PEM files of CAs whose client certificates are accepted (Ferrite's CA always is).
    pub ca_files: Vec<String>,
}

/// See [`TlsConfig::client_certs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCerts {
    Required,
    Optional,
    None,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: String::new(),
            key_file: String::new(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            client_certs: ClientCerts::Required,
            ca_files: Vec::new(),
        }
    }
}

/// The embedded store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `full`: fsync every commit (survives power loss); `normal`: survives a crash of Ferrite
    /// but not of the machine; `off`: no fsync (tests and benchmarks only).
    pub sync: SyncSetting,
    /// Where the state (registry, certificates, policies, rules, shadows, keys) lives:
    /// `sqlite` (`<data_dir>/state.db`) or `postgres` (`postgres_url`).
    pub backend: BackendSetting,
    /// `postgres://user:password@host:port/database` (or `host=... user=...`).
    pub postgres_url: String,
    /// The most connections Ferrite opens to PostgreSQL.
    pub postgres_max_connections: usize,
}

/// See [`StoreConfig::backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendSetting {
    Sqlite,
    Postgres,
}

/// See [`StoreConfig::sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncSetting {
    Full,
    Normal,
    Off,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { sync: SyncSetting::Full, backend: BackendSetting::Sqlite, postgres_url: String::new(), postgres_max_connections: 16 }
    }
}

impl SyncSetting {
    /// The store's mode.
    pub fn mode(self) -> store::SyncMode {
        match self {
            SyncSetting::Full => store::SyncMode::Full,
            SyncSetting::Normal => store::SyncMode::Normal,
            SyncSetting::Off => store::SyncMode::Off,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `ferrite=debug,broker=debug`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The MQTT listener and broker limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub listen: String,
    pub tls_listen: String,
    pub ws_listen: String,
    pub wss_listen: String,
    /// Allow listeners on non-loopback addresses without required client certificates.
    pub allow_unauthenticated_remote: bool,
    pub max_connections: usize,
    pub max_connections_per_sec: u32,
    pub max_publish_per_sec: u32,
    pub max_packet_size_bytes: usize,
    pub max_keep_alive_secs: u16,
    pub connect_timeout_secs: u64,
    pub receive_maximum: u16,
    pub max_inflight_messages: u16,
    pub max_queued_messages: usize,
    pub topic_alias_maximum: u16,
    pub max_session_expiry_secs: u32,
    pub max_client_id_len: usize,
    pub max_topic_levels: usize,
    pub max_topic_length_bytes: usize,
    pub max_subscriptions_per_session: usize,
    pub retain_available: bool,
    pub maximum_qos: u8,
    pub queue_qos0_offline: bool,
    pub queue_full: QueueFullSetting,
    pub lifecycle_events: bool,
    /// Park MQTT connections over TCP or TLS idle this long (0: never).
    pub park_idle_after_ms: u64,
    pub packet_timeout_secs: u64,
    pub max_partial_packet_bytes_total: usize,
    /// Origins of web pages allowed on ws_listen besides loopback ones ("*": any).
    pub ws_allowed_origins: Vec<String>,
    /// The AWS IoT policy document applied to the unauthenticated loopback listeners
    /// (`listen`, `ws_listen`).
    pub local_policy: String,
}

/// The default local policy: everything allowed.
pub const ALLOW_ALL_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

/// See `mqtt.queue_full` in the example configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueFullSetting {
    Drop,
    Disconnect,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./ferrite-data"),
            log: LogConfig::default(),
            mqtt: MqttConfig::default(),
            tls: TlsConfig::default(),
            store: StoreConfig::default(),
            api: ApiSettings::default(),
            aws: AwsConfig::default(),
            registry: RegistrySettings::default(),
            rules: Default::default(),
            functions: Default::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, level: "info".into() }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        let b = broker::BrokerConfig::default();
        MqttConfig {
            listen: "127.0.0.1:1883".into(),
            tls_listen: "0.0.0.0:8883".into(),
            ws_listen: "127.0.0.1:8083".into(),
            wss_listen: "127.0.0.1:8443".into(),
            allow_unauthenticated_remote: false,
            max_connections: b.max_connections,
            max_connections_per_sec: b.max_connections_per_sec,
            max_publish_per_sec: b.max_publish_per_sec,
            max_packet_size_bytes: b.max_packet_size,
            max_keep_alive_secs: b.max_keep_alive_secs,
            connect_timeout_secs: b.connect_timeout.as_secs(),
            receive_maximum: b.receive_maximum,
            max_inflight_messages: b.max_inflight,
            max_queued_messages: b.max_queued_messages,
            topic_alias_maximum: b.topic_alias_maximum,
            max_session_expiry_secs: b.max_session_expiry_secs,
            max_client_id_len: b.max_client_id_len,
            max_topic_levels: b.max_topic_levels,
            max_topic_length_bytes: b.max_topic_length,
            max_subscriptions_per_session: b.max_subscriptions_per_session,
            retain_available: b.retain_available,
            maximum_qos: b.maximum_qos,
            queue_qos0_offline: b.queue_qos0_offline,
            queue_full: QueueFullSetting::Drop,
            lifecycle_events: b.lifecycle_events,
            park_idle_after_ms: b.park_idle_after.map_or(0, |d| d.as_millis() as u64),
            packet_timeout_secs: b.packet_timeout.as_secs(),
            max_partial_packet_bytes_total: b.max_partial_packet_bytes,
            ws_allowed_origins: Vec::new(),
            local_policy: ALLOW_ALL_POLICY.into(),
        }
    }
}

/// The commented default configuration printed by `ferrite config example`.
pub const EXAMPLE: &str = r#"# Ferrite configuration. Every key is optional; shown are the defaults.
# Environment variables override the file: FERRITE_<KEY> for top-level keys and
# FERRITE_<SECTION>__<KEY> inside a section (for example FERRITE_MQTT__LISTEN=0.0.0.0:1883).
# FERRITE_TEST_* variables are the test harnesses' own and are ignored.
# Command-line flags override both.

# Directory for Ferrite's files (created on start).
data_dir = "./ferrite-data"

[log]
# "text" or "json".
format = "text"
# A tracing filter: "info", "debug", "broker=debug,ferrite=info", ...
level = "info"

[mqtt]
# Listeners: an address, or "off". Plain MQTT over TCP (loopback: no authentication).
listen = "127.0.0.1:1883"
# MQTT over TLS (client certificates: see [tls]).
tls_listen = "0.0.0.0:8883"
# MQTT over WebSocket, path /mqtt, subprotocol mqtt.
ws_listen = "127.0.0.1:8083"
# MQTT over WebSocket over TLS.
wss_listen = "127.0.0.1:8443"
# A listener on a non-loopback address must require client certificates (TLS with
# tls.client_certs = "required"), unless this is true.
allow_unauthenticated_remote = false
# Connections served at once per listener; more are answered "server busy" and closed.
max_connections = 100000
# New connections accepted per second per listener (0: unlimited).
max_connections_per_sec = 0
# PUBLISH packets read per second per connection (0: unlimited); a faster client is slowed
# down (Ferrite stops reading its socket), not disconnected.
max_publish_per_sec = 0
# Largest packet accepted (also advertised to MQTT 5 clients as Maximum Packet Size).
max_packet_size_bytes = 1048576
# Largest keep alive; MQTT 5 clients asking for more are told this one (Server Keep Alive).
max_keep_alive_secs = 1200
# Time a new socket has to send CONNECT.
connect_timeout_secs = 10
# Receive Maximum advertised: QoS 2 messages a client may leave awaiting PUBREL.
receive_maximum = 128
# Unacknowledged outgoing QoS 1/2 messages per session (the client's Receive Maximum also caps it).
max_inflight_messages = 128
# Messages queued per session beyond the in-flight window; a message arriving at a full
# queue is dropped and counted.
max_queued_messages = 1000
# Topic Alias Maximum advertised to MQTT 5 clients (0 disables inbound aliases).
topic_alias_maximum = 64
# Longest session expiry granted; MQTT 3.1.1 persistent sessions (clean session 0) get this.
max_session_expiry_secs = 3600
# Longest client identifier accepted.
max_client_id_len = 128
# Most levels in a topic name or filter (AWS IoT: 8), and its longest length (AWS IoT: 256
# bytes). A PUBLISH or will past either closes the connection (0x90 Topic Name invalid); a
# SUBSCRIBE filter past either is refused (0x8F Topic Filter invalid).
max_topic_levels = 32
max_topic_length_bytes = 1024
# Subscriptions one session may hold (AWS IoT: 50); further filters in a SUBSCRIBE are refused
# with 0x97 (Quota exceeded).
max_subscriptions_per_session = 50
# Whether retained messages are supported.
retain_available = true
# Highest QoS supported: 0, 1 or 2.
maximum_qos = 2
# Whether QoS 0 messages are queued (in memory only) for disconnected persistent sessions.
queue_qos0_offline = false
# A QoS 1/2 message that meets a connected session's full queue (max_queued_messages):
#   "drop"       drop it for that session and count it;
#   "disconnect" also disconnect the client (MQTT 5: 0x97 Quota exceeded), so it resumes its
#                session later instead of silently missing messages.
# QoS 0 messages meeting a full queue are always dropped and counted.
queue_full = "drop"
# Publish AWS IoT lifecycle events: $aws/events/presence/connected|disconnected/<clientId> and
# $aws/events/subscriptions/subscribed|unsubscribed/<clientId>.
lifecycle_events = true
# An MQTT connection over TCP or TLS (listen, tls_listen) idle this long is parked: its task ends
# and its socket waits in an epoll set of Ferrite's own, keeping only a compact record (and, for
# TLS, the TLS session), so a large idle fleet costs little memory. Data from the client, a
# message for it, a takeover or its keep-alive deadline resumes it. 0: never park.
park_idle_after_ms = 2000
# A packet that has started arriving must arrive whole within this time, whatever the keep
# alive (0x83 and closed otherwise).
packet_timeout_secs = 30
# Bytes of packets still arriving, all connections together; a connection whose partial
# packet (past its first 64 KiB) would take the total past it is closed (0x97).
max_partial_packet_bytes_total = 268435456
# Web pages allowed to open MQTT over WebSocket on ws_listen (which has no authentication):
# besides clients sending no Origin (not browsers) and loopback origins (http://localhost:3000,
# http://127.0.0.1, ...), these exact origins, e.g. ["https://dashboard.example.com"]; "*" any.
ws_allowed_origins = []
# The AWS IoT policy document that decides what clients of the unauthenticated listeners
# (listen and ws_listen: loopback, for local development) may do. Its variables are
# ${iot:ClientId} and ${aws:SourceIp}; resources are arn:aws:iot:<region>:<account_id>:client/...,
# topic/..., topicfilter/... The default allows everything. TLS listeners never use it: their
# clients present a registered ACTIVE certificate and get the policies attached to it.
local_policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'

[tls]
# Server certificate chain and key (PEM). Empty: Ferrite creates its own CA on first start
# (<data_dir>/certs/ca.pem, ca.key) and issues server.pem/server.key from it.
cert_file = ""
key_file = ""
# Names (DNS names or IP addresses) in the server certificate Ferrite issues for itself.
server_names = ["localhost", "127.0.0.1"]
# "required", "optional" or "none": must TLS clients present a certificate at the handshake?
# Accepted there: a registered ACTIVE certificate, or one that chains to Ferrite's CA, one of
# ca_files or an ACTIVE registered CA certificate. To CONNECT, the certificate must be
# registered (CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterCertificate,
# RegisterCertificateWithoutCA) and ACTIVE, and its policies must allow iot:Connect. With
# "none" no TLS client can connect: a certificate is how TLS clients authenticate.
client_certs = "required"
# Extra PEM files of CAs whose client certificates are accepted at the handshake (they must
# still be registered to connect).
ca_files = []

[store]
# Retained messages and persistent sessions live in <data_dir>/ferrite.db (SQLite, WAL).
# A QoS 1/2 message is acknowledged only once it is committed for every persistent session it
# reaches. When a commit reaches the disk:
#   "full"   fsync on every (group) commit: survives power loss;
#   "normal" survives a crash or kill -9 of Ferrite, not a power loss;
#   "off"    never fsync (tests and benchmarks only).
sync = "full"
# The state of the services (things, certificates, policies, rules, shadows, functions, access
# keys, the account id and the CA): "sqlite" keeps it in <data_dir>/state.db; "postgres" in
# the database at postgres_url, which several Ferrite nodes can share (Ferrite creates its
# tables there). Retained messages and sessions stay in <data_dir>/ferrite.db either way.
backend = "sqlite"
# For backend = "postgres", e.g. "postgres://ferrite:secret@db.example:5432/ferrite".
postgres_url = ""
postgres_max_connections = 16

[api]
# The AWS-compatible HTTP API (SigV4-signed requests; boto3 and the aws CLI with
# --endpoint-url) and the unauthenticated /healthz, /readyz and /metrics.
# Plain HTTP (loopback by default) and HTTPS with the server certificate: an address or "off".
listen = "127.0.0.1:8080"
tls_listen = "0.0.0.0:9443"
# Largest request body accepted (413 beyond).
max_body_bytes = 1048576
# Time a client has to send a request's body once its headers are in (408 beyond); the
# headers themselves must arrive within 30 s.
body_timeout_secs = 30
# Connections served at once per API listener; more are closed at once.
max_connections = 1024
# Bytes of request bodies being received before their signature can be checked, all
# connections together (each request reserves its Content-Length, or max_body_bytes when it
# sends none); past it requests get 429 ThrottlingException. Requests whose signature form,
# date, region or access key is wrong are refused before their body is read.
max_pending_body_bytes = 67108864
# /metrics needs no signature but is served only to loopback peers unless this is true.
metrics_from_anywhere = false
# The plain-HTTP listener (listen) must be on a loopback address unless this is true.
allow_plaintext_remote = false

[aws]
# ARNs are arn:aws:iot:<region>:<account_id>:...
region = "us-east-1"
# Twelve digits; empty: generated on first start and kept in the store.
account_id = ""
# The host name DescribeEndpoint answers.
endpoint_host = "localhost"

[registry]
# Seconds a thing type must have been deprecated (DeprecateThingType) before DeleteThingType
# accepts it; AWS IoT waits five minutes.
thing_type_delete_delay_secs = 300

[rules]
# AWS IoT topic rules (CreateTopicRule, ...) run inside Ferrite: each enabled rule has its own
# bounded queue. Messages whose http or lambda actions may be running at once, per rule; beyond
# that a message's actions are dropped and counted (ferrite_rules_actions_dropped_total).
max_inflight_actions_per_rule = 100
# An http action's deadline for all its tries (AWS: at most three tries; retries on connection
# failures, 429 and 5xx).
http_timeout_ms = 3000
http_retries = 2
# Pause before the first retry, doubled for each further one.
http_retry_backoff_ms = 100
# AWS requires https:// URLs for http actions and topic rule destinations; true also allows
# http:// (local development).
allow_plain_http = false

[functions]
# Ferrite functions stand in for AWS Lambda (rules' lambda action, aws_lambda(), the lambda API):
# a webhook URL, or a program that reads the event JSON on stdin and writes its JSON result on
# stdout. A command function may only run a program inside one of these absolute directories
# (checked at creation and at every run; symlinks are resolved). It runs directly, without a
# shell or arguments, in its own directory, with a clean environment. Empty: no command
# functions. List only directories that hold function programs (never /usr/bin and the like).
allowed_command_dirs = []
# Invocations of one function running at once (synchronous Invoke beyond this: 429).
max_concurrency = 8
# Retries of a failed asynchronous invocation (the rules' lambda action), with a doubling pause.
async_retries = 2
retry_backoff_ms = 200
# Largest result a function may return.
max_result_bytes = 6291456
# Webhook functions and the rules' http actions connect only to public addresses: a URL whose
# host resolves to a loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
# (169.254/16, the cloud metadata service; fe80::/10), shared or multicast address is refused at
# connect time. True lets them reach such addresses (services on this host or its network).
allow_private_targets = false
"#;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {name}: {problem}")]
    Env { name: String, problem: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the file (if any) and applies `FERRITE_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                text.parse::<toml::Table>().map_err(|source| ConfigError::Parse { path: path.into(), source })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("FERRITE_") else { continue };
            // FERRITE_TEST_* belong to the test harnesses (FERRITE_TEST_LOG, FERRITE_TEST_BACKEND, ...).
            if key.starts_with("TEST_") {
                continue;
            }
            if key == "CONFIG" {
                continue;
            }
            let path: Vec<String> = key.split("__").map(|k| k.to_ascii_lowercase()).collect();
            set_path(&mut table, &path, &value).map_err(|problem| ConfigError::Env { name: name.clone(), problem })?;
        }
        let config: Config = table.try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// A listener address (`mqtt.listen`, `api.tls_listen`, ...), or `None` when it is "off".
    pub fn listener(&self, which: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let m = &self.mqtt;
        let v = match which {
            "mqtt.listen" => &m.listen,
            "mqtt.tls_listen" => &m.tls_listen,
            "mqtt.ws_listen" => &m.ws_listen,
            "mqtt.wss_listen" => &m.wss_listen,
            "api.listen" => &self.api.listen,
            _ => &self.api.tls_listen,
        };
        if v == "off" || v.is_empty() {
            return Ok(None);
        }
        v.parse().map(Some).map_err(|_| ConfigError::Invalid(format!("{which} must be an address like 127.0.0.1:1883 or \"off\", not {v:?}")))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.mqtt;
        let bad = |s: String| Err(ConfigError::Invalid(s));
        for which in ["mqtt.listen", "mqtt.tls_listen", "mqtt.ws_listen", "mqtt.wss_listen", "api.listen", "api.tls_listen"] {
            let Some(addr) = self.listener(which)? else { continue };
            // The API authenticates every request with SigV4.
            let authenticated = which.starts_with("api.") || (which == "mqtt.tls_listen" && self.tls.client_certs == ClientCerts::Required);
            if !addr.ip().is_loopback() && !authenticated && !m.allow_unauthenticated_remote {
                return bad(format!(
                    "{which} = {addr} is reachable from other hosts without authentication; use a loopback address, \
                     TLS with tls.client_certs = \"required\", or set mqtt.allow_unauthenticated_remote = true"
                ));
            }
        }
        if let Some(addr) = self.listener("api.listen")?
            && !addr.ip().is_loopback()
            && !self.api.allow_plaintext_remote
        {
            return bad(format!(
                "api.listen = {addr} serves the API in plain HTTP to other hosts (signed requests can be replayed and \
                 CreateKeysAndCertificate's private keys read on the way); use a loopback address, api.tls_listen, \
                 or set api.allow_plaintext_remote = true"
            ));
        }
        for (key, v) in [("api.body_timeout_secs", self.api.body_timeout_secs as usize), ("api.max_connections", self.api.max_connections), ("api.max_pending_body_bytes", self.api.max_pending_body_bytes)] {
            if v == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        if let Err(e) = identity::policy::parse(&m.local_policy) {
            return bad(format!("mqtt.local_policy is not a valid AWS IoT policy: {e}"));
        }
        let a = &self.aws.account_id;
        if !a.is_empty() && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
            return bad(format!("aws.account_id must be twelve digits, not {a:?}"));
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return bad("tls.cert_file and tls.key_file go together".into());
        }
        if m.maximum_qos > 2 {
            return bad(format!("mqtt.maximum_qos must be 0, 1 or 2, not {}", m.maximum_qos));
        }
        if m.receive_maximum == 0 {
            return bad("mqtt.receive_maximum must be at least 1".into());
        }
        if m.max_inflight_messages == 0 {
            return bad("mqtt.max_inflight_messages must be at least 1".into());
        }
        if !(64..=268_435_460).contains(&m.max_packet_size_bytes) {
            return bad(format!("mqtt.max_packet_size_bytes must be 64..=268435460, not {}", m.max_packet_size_bytes));
        }
        if !(1..=65_535).contains(&m.max_topic_levels) {
            return bad(format!("mqtt.max_topic_levels must be 1..=65535, not {}", m.max_topic_levels));
        }
        if !(1..=65_535).contains(&m.max_topic_length_bytes) {
            return bad(format!("mqtt.max_topic_length_bytes must be 1..=65535, not {}", m.max_topic_length_bytes));
        }
        if m.packet_timeout_secs == 0 {
            return bad("mqtt.packet_timeout_secs must be at least 1".into());
        }
        if m.max_subscriptions_per_session == 0 {
            return bad("mqtt.max_subscriptions_per_session must be at least 1".into());
        }
        if m.max_connections == 0 {
            return bad("mqtt.max_connections must be at least 1".into());
        }
        if m.connect_timeout_secs == 0 {
            return bad("mqtt.connect_timeout_secs must be at least 1".into());
        }
        if self.store.backend == BackendSetting::Postgres {
            if self.store.postgres_url.is_empty() {
                return bad("store.backend = \"postgres\" needs store.postgres_url".into());
            }
            if let Err(e) = store::state::check_postgres_url(&self.store.postgres_url) {
                return bad(format!("store.postgres_url is not a PostgreSQL connection string: {e}"));
            }
        }
        if self.store.postgres_max_connections < 2 {
            return bad("store.postgres_max_connections must be at least 2".into());
        }
        crate::rules_config::validate(&self.rules, &self.functions)?;
        Ok(())
    }

    /// The broker's view of the configuration.
    pub fn broker(&self) -> broker::BrokerConfig {
        let m = &self.mqtt;
        broker::BrokerConfig {
            max_connections: m.max_connections,
            max_connections_per_sec: m.max_connections_per_sec,
            max_publish_per_sec: m.max_publish_per_sec,
            max_packet_size: m.max_packet_size_bytes,
            max_keep_alive_secs: m.max_keep_alive_secs,
            connect_timeout: Duration::from_secs(m.connect_timeout_secs),
            receive_maximum: m.receive_maximum,
            max_inflight: m.max_inflight_messages,
            max_queued_messages: m.max_queued_messages,
            topic_alias_maximum: m.topic_alias_maximum,
            max_session_expiry_secs: m.max_session_expiry_secs,
            max_client_id_len: m.max_client_id_len,
            max_topic_levels: m.max_topic_levels,
            max_topic_length: m.max_topic_length_bytes,
            max_subscriptions_per_session: m.max_subscriptions_per_session,
            retain_available: m.retain_available,
            maximum_qos: m.maximum_qos,
            queue_qos0_offline: m.queue_qos0_offline,
            queue_full: match m.queue_full {
                QueueFullSetting::Drop => broker::QueueFull::Drop,
                QueueFullSetting::Disconnect => broker::QueueFull::Disconnect,
            },
            lifecycle_events: m.lifecycle_events,
            park_idle_after: (m.park_idle_after_ms > 0).then(|| Duration::from_millis(m.park_idle_after_ms)),
            packet_timeout: Duration::from_secs(m.packet_timeout_secs),
            max_partial_packet_bytes: m.max_partial_packet_bytes_total,
            ws_allowed_origins: Some(m.ws_allowed_origins.clone().into()),
        }
    }
}

/// Sets `path` (section, key) in the table to `raw`, read as a TOML value when it is one
/// (number, boolean, quoted string) and as a plain string otherwise.
pub fn set_path(table: &mut toml::Table, path: &[String], raw: &str) -> Result<(), String> {
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let Some((last, sections)) = path.split_last() else { return Err("empty key".into()) };
    let mut t = table;
    for s in sections {
        t = t
            .entry(s.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{s} is not a section"))?;
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_the_default() {
        let parsed: Config = toml::from_str(EXAMPLE).expect("example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn env_overrides_file_values() {
        let dir = std::env::temp_dir().join(format!("ferrite-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "[mqtt]\nmax_connections = 5\nreceive_maximum = 9\n").unwrap();
        let env = vec![
            ("FERRITE_MQTT__MAX_CONNECTIONS".to_string(), "7".to_string()),
            ("FERRITE_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let c = Config::load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(c.mqtt.max_connections, 7);
        assert_eq!(c.mqtt.receive_maximum, 9);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_are_reported_by_name() {
        let env = vec![("FERRITE_MQTT__MAXIMUM_QOS".to_string(), "3".to_string())];
        let e = Config::load(None, env.into_iter()).unwrap_err().to_string();
        assert!(e.contains("maximum_qos"), "{e}");
        let env = vec![("FERRITE_MQTT__NO_SUCH_KEY".to_string(), "1".to_string())];
        let e = Config::load(None, env.into_iter()).unwrap_err().to_string();
        assert!(e.contains("no_such_key"), "{e}");
        let env = vec![("FERRITE_MQTT__LOCAL_POLICY".to_string(), r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.to_string())];
        let e = Config::load(None, env.into_iter()).unwrap_err().to_string();
        assert!(e.contains("mqtt.local_policy") && e.contains("s3:*"), "{e}");
    }
}
