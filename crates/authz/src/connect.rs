//! The broker side: [`CertAuthenticator`] admits a TLS client whose certificate is registered
//! and ACTIVE (and whose registered CA, if any, is ACTIVE) when its policies allow `iot:Connect`
//! on `client/{clientId}`, then answers `iot:Publish`/`iot:Receive` on `topic/...`,
//! `iot:Subscribe` on `topicfilter/...` and `iot:RetainPublish` from a per-connection decision
//! cache that is emptied when a document it was computed from changes (its certificate or CA,
//! its thing, the thing's groups, their attachments, the policies found: [`crate::dependents`]). [`LocalPolicy`] applies one configured
//! policy document to the loopback listeners.

use crate::Authz;
use broker::auth::{Access, Authenticator, Authorization, ConnectInfo, ConnectResult};
use identity::policy::{Policy as Parsed, Request, evaluate};
use mqtt::ReasonCode;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Decisions kept per connection before the cache starts over.
const MAX_CACHED: usize = 4096;

/// What a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Connect,
    Publish,
    Retain,
    Subscribe,
    Receive,
}

impl From<Access> for Action {
    fn from(a: Access) -> Action {
        match a {
            Access::Publish => Action::Publish,
            Access::Retain => Action::Retain,
            Access::Subscribe => Action::Subscribe,
            Access::Receive => Action::Receive,
        }
    }
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Retain => "iot:RetainPublish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
        }
    }

    fn resource_type(self) -> &'static str {
        match self {
            Action::Connect => "client",
            Action::Subscribe => "topicfilter",
            _ => "topic",
        }
    }
}

/// Adds the thing policy variables of a thing attached to the connection's principal.
pub(crate) fn thing_vars(vars: &mut BTreeMap<String, String>, t: &registry::Thing) {
    vars.insert("iot:Connection.Thing.ThingName".into(), t.name.clone());
    if let Some(ty) = &t.type_name {
        vars.insert("iot:Connection.Thing.ThingTypeName".into(), ty.clone());
    }
    for (k, v) in &t.attributes {
        vars.insert(format!("iot:Connection.Thing.Attributes[{k}]"), v.clone());
    }
}

/// A value that may be put into a resource pattern: one with the policy wildcards `*` or `?`, or
/// the MQTT wildcards `+` or `#` (which a `topicfilter` resource matches as filter levels), would
/// widen it. A statement whose variable is unusable matches nothing.
pub(crate) fn usable(v: &str) -> bool {
    !v.contains(['*', '?', '+', '#'])
}

/// Cached decisions by resource (topic, filter or client id), one slot per action: looked up by
/// `&str`, so a cache hit allocates nothing.
pub(crate) type Decisions = HashMap<String, [Option<bool>; 5]>;

fn cached(d: &Decisions, action: Action, what: &str) -> Option<bool> {
    d.get(what).and_then(|slots| slots[action as usize])
}

fn remember(d: &mut Decisions, action: Action, what: &str, allowed: bool) {
    if d.len() >= MAX_CACHED && !d.contains_key(what) {
        d.clear();
    }
    d.entry(what.to_string()).or_default()[action as usize] = Some(allowed);
}

/// The cached decision for `action` on `what`, or the policies' decision (then cached).
fn decide_cached(
    d: &mut Decisions,
    prefix: &str,
    action: Action,
    what: &str,
    policies: &[Arc<Parsed>],
    vars: &BTreeMap<String, String>,
) -> bool {
    if let Some(decision) = cached(d, action, what) {
        return decision;
    }
    let resource = format!("{prefix}{}/{what}", action.resource_type());
    let lookup = |k: &str| vars.get(k).cloned();
    let allowed = evaluate(policies.iter().map(|p| &**p), &Request { action: action.name(), resource: &resource, vars: &lookup }).allowed();
    remember(d, action, what, allowed);
    allowed
}

/// One connection's view of the documents it depends on: variables, policies, whether it may
/// act at all.
struct Context {
    /// Set when one of those documents changes.
    stale: crate::dependents::Token,
    /// When the certificate's validity period starts or ends next (Unix ms): the context is
    /// computed again then.
    recheck_at_ms: i64,
    vars: BTreeMap<String, String>,
    policies: Vec<Arc<Parsed>>,
    /// False once the certificate (or its CA) is no longer ACTIVE.
    active: bool,
}

/// Why a certificate cannot be used.
fn certificate_problem(authz: &Authz, id: &str) -> Option<&'static str> {
    let st = authz.read();
    let Some(c) = st.certs.get(id) else { return Some("certificate is not registered") };
    if c.status != crate::CertStatus::Active {
        return Some("certificate is not ACTIVE");
    }
    let now = crate::now_ms();
    if now < c.not_before_ms || now > c.not_after_ms {
        return Some("certificate is outside its validity period");
    }
    match &c.ca_id {
        Some(ca) if !st.cas.get(ca).is_some_and(|x| x.active) => Some("certificate's CA is not ACTIVE"),
        _ => None,
    }
}

/// The rights of a connection authenticated by a certificate.
pub struct CertConnection {
    authz: Arc<Authz>,
    cert_id: String,
    client_id: String,
    source_ip: String,
    /// `arn:aws:iot:{region}:{account}:`, the start of every resource it asks about.
    prefix: String,
    /// The TLS server name (SNI) the client connected with, for `iot:DomainName`.
    server_name: Option<String>,
    cert_vars: BTreeMap<String, String>,
    state: Mutex<(Arc<Context>, Decisions)>,
}

impl CertConnection {
    fn new(authz: &Arc<Authz>, info: &ConnectInfo<'_>, cert: &identity::CertFacts) -> CertConnection {
        CertConnection {
            authz: authz.clone(),
            cert_id: cert.id.clone(),
            client_id: info.client_id.to_string(),
            source_ip: info.peer.addr.ip().to_string(),
            prefix: authz.resource_prefix(),
            server_name: info.peer.server_name.as_deref().map(str::to_string),
            cert_vars: identity::x509::policy_variables(&cert.der),
            state: Mutex::new((Arc::new(Context { stale: Arc::new(AtomicBool::new(true)), recheck_at_ms: 0, vars: BTreeMap::new(), policies: Vec::new(), active: false }), HashMap::new())),
        }
    }

    /// The context as of now, registered with the documents it depends on.
    fn context(&self) -> Context {
        use crate::dependents::key;
        let a = &self.authz;
        let since = a.dependents().seq();
        let mut vars = self.cert_vars.clone();
        vars.insert("aws:SourceIp".into(), self.source_ip.clone());
        if let Some(name) = &self.server_name {
            vars.insert("iot:DomainName".into(), name.clone());
        }
        if usable(&self.client_id) {
            vars.insert("iot:ClientId".into(), self.client_id.clone());
        }
        let cert_arn = a.cert_arn(&self.cert_id);
        let mut keys = vec![key(crate::state::CERT, &self.cert_id), key(registry::THING_KIND, &self.client_id)];
        // The certificate's CA, and when its validity period starts or ends next.
        let now = crate::now_ms();
        let (ca, recheck_at_ms) = a.read().certs.get(&self.cert_id).map_or((None, i64::MAX), |c| {
            (c.ca_id.clone(), if now < c.not_before_ms { c.not_before_ms } else { c.not_after_ms.saturating_add(1) })
        });
        if let Some(ca) = ca {
            keys.push(key(crate::state::CA, &ca));
        }
        let thing = a.registry.describe_thing(&self.client_id).ok().filter(|t| t.principals.contains_key(&cert_arn));
        vars.insert("iot:Connection.Thing.IsAttached".into(), thing.is_some().to_string());
        let mut targets = vec![cert_arn];
        if let Some(t) = &thing {
            thing_vars(&mut vars, t);
            let groups = a.group_arns_of_thing(&t.name);
            keys.extend(groups.iter().filter_map(|g| g.rsplit_once('/')).map(|(_, name)| key(registry::THING_GROUP_KIND, name)));
            targets.extend(groups);
        }
        vars.retain(|_, v| usable(v));
        let active = certificate_problem(a, &self.cert_id).is_none();
        keys.extend(targets.iter().map(|t| key(crate::state::TARGET, t)));
        let policies = {
            let st = a.read();
            // Every policy attached, parsed or not (a policy created later under that name).
            keys.extend(targets.iter().filter_map(|t| st.targets.get(t)).flatten().map(|p| key(crate::state::POLICY, p)));
            Authz::policies_of(&st, &targets)
        };
        let stale = Arc::new(AtomicBool::new(false));
        a.dependents().watch(&keys, &stale, since);
        Context { stale, recheck_at_ms, vars, policies: policies.into_values().collect(), active }
    }

    fn decide(&self, action: Action, what: &str) -> bool {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.stale.load(Ordering::Acquire) || crate::now_ms() >= guard.0.recheck_at_ms {
            guard.0 = Arc::new(self.context());
            guard.1.clear();
        }
        let ctx = guard.0.clone();
        // An inactive certificate (or CA) may do nothing, whatever its policies say.
        ctx.active && decide_cached(&mut guard.1, &self.prefix, action, what, &ctx.policies, &ctx.vars)
    }
}

impl Authorization for CertConnection {
    fn allows(&self, access: Access, what: &str) -> bool {
        self.decide(access.into(), what)
    }
    fn principal(&self) -> Option<&str> {
        Some(&self.cert_id)
    }
    fn denied(&self, action: &'static str) {
        self.authz.denials.count(&self.client_id, &self.cert_id, action);
    }
}

/// The authenticator of the TLS listeners (MQTT over TLS, WebSocket over TLS).
pub struct CertAuthenticator {
    authz: Arc<Authz>,
}

impl CertAuthenticator {
    /// Certificates registered with this service.
    pub fn new(authz: Arc<Authz>) -> CertAuthenticator {
        CertAuthenticator { authz }
    }

    /// Decides a CONNECT.
    pub fn authenticate(&self, info: &ConnectInfo<'_>) -> ConnectResult {
        let a = &self.authz;
        let Some(cert) = &info.peer.cert else {
            tracing::info!(client_id = info.client_id, peer = %info.peer.addr, "no client certificate (and no custom authorizer): not authorized");
            a.denials.count(info.client_id, "", "connect");
            return Err(ReasonCode::NOT_AUTHORIZED);
        };
        if let Some(problem) = certificate_problem(a, &cert.id) {
            tracing::info!(client_id = info.client_id, certificate = %cert.id, problem, "connection refused");
            a.denials.count(info.client_id, &cert.id, "connect");
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        let conn = CertConnection::new(a, info, cert);
        if !conn.decide(Action::Connect, info.client_id) {
            tracing::info!(client_id = info.client_id, certificate = %cert.id, "iot:Connect not allowed by the certificate's policies");
            a.denials.count(info.client_id, &cert.id, "connect");
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        Ok(Arc::new(conn))
    }
}

impl Authenticator for CertAuthenticator {
    fn connect<'a>(&'a self, info: ConnectInfo<'a>) -> Pin<Box<dyn Future<Output = ConnectResult> + Send + 'a>> {
        Box::pin(async move { self.authenticate(&info) })
    }
}

/// The policy of the loopback listeners (`mqtt.local_policy`): one document evaluated with
/// `iot:ClientId` and `aws:SourceIp`, or everything allowed.
pub struct LocalPolicy {
    policy: Option<Arc<Parsed>>,
    prefix: String,
    denials: Arc<crate::Denials>,
}

impl LocalPolicy {
    /// `policy` None allows everything (as does a policy that allows everything anyway: its
    /// connections then share one answer instead of evaluating it each).
    pub fn new(policy: Option<Parsed>, region: &str, account_id: &str, denials: Arc<crate::Denials>) -> LocalPolicy {
        let policy = policy.filter(|p| !p.allows_everything()).map(Arc::new);
        LocalPolicy { policy, prefix: format!("arn:aws:iot:{region}:{account_id}:"), denials }
    }
}

/// A connection under fixed policies: the local policy, or those a custom authorizer returned
/// (then with its principal).
pub(crate) struct LocalConnection {
    pub(crate) policies: Vec<Arc<Parsed>>,
    pub(crate) prefix: String,
    pub(crate) client_id: String,
    pub(crate) principal: Option<String>,
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) cache: Mutex<Decisions>,
    pub(crate) denials: Arc<crate::Denials>,
}

impl LocalConnection {
    /// Whether `iot:Connect` on `client/{clientId}` is allowed.
    pub(crate) fn may_connect(&self) -> bool {
        self.decide(Action::Connect, &self.client_id)
    }

    fn decide(&self, action: Action, what: &str) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        decide_cached(&mut cache, &self.prefix, action, what, &self.policies, &self.vars)
    }
}

impl Authorization for LocalConnection {
    fn allows(&self, access: Access, what: &str) -> bool {
        self.decide(access.into(), what)
    }
    fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }
    fn denied(&self, action: &'static str) {
        self.denials.count(&self.client_id, self.principal.as_deref().unwrap_or(""), action);
    }
}

impl Authenticator for LocalPolicy {
    fn connect<'a>(&'a self, info: ConnectInfo<'a>) -> Pin<Box<dyn Future<Output = ConnectResult> + Send + 'a>> {
        Box::pin(async move {
            let Some(policy) = &self.policy else { return Ok(broker::auth::AllowAll::shared()) };
            let mut vars = BTreeMap::from([("aws:SourceIp".to_string(), info.peer.addr.ip().to_string())]);
            if usable(info.client_id) {
                vars.insert("iot:ClientId".into(), info.client_id.to_string());
            }
            let conn = LocalConnection {
                policies: vec![policy.clone()],
                prefix: self.prefix.clone(),
                client_id: info.client_id.to_string(),
                principal: None,
                vars,
                cache: Mutex::new(HashMap::new()),
                denials: self.denials.clone(),
            };
            if !conn.decide(Action::Connect, info.client_id) {
                tracing::info!(client_id = info.client_id, "iot:Connect not allowed by the local policy");
                self.denials.count(info.client_id, "", "connect");
                return Err(ReasonCode::NOT_AUTHORIZED);
            }
            Ok(Arc::new(conn) as Arc<dyn Authorization>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;
    use broker::server::PeerInfo;
    use identity::CertFacts;
    use registry::{NewThing, PrincipalType, ThingUpdate};

    fn peer(der: &[u8]) -> PeerInfo {
        PeerInfo { addr: "10.1.2.3:4000".parse().unwrap(), transport: "mqtts", cert: CertFacts::from_der(der).map(Into::into), server_name: Some("iot.example.com".into()) }
    }

    fn by_name(n: &str) -> registry::NameOrArn {
        registry::NameOrArn { name: Some(n.into()), arn: None }
    }

    fn info<'a>(peer: &'a PeerInfo, client_id: &'a str) -> ConnectInfo<'a> {
        ConnectInfo { peer, client_id, username: None, password: None }
    }

    #[test]
    fn certificates_connect_by_status_and_policy_and_decisions_follow_changes() {
        let f = fixture();
        let a = &f.authz;
        let created = a.create_keys_and_certificate(true).unwrap().certificate;
        let der = identity::x509::pem_to_der(&created.pem).unwrap();
        let arn = a.cert_arn(&created.id);
        let auth = CertAuthenticator::new(a.clone());
        let p = peer(&der);
        // No policy: default deny.
        assert_eq!(auth.authenticate(&info(&p, "dev-1")).err(), Some(ReasonCode::NOT_AUTHORIZED));
        let doc = r#"{"Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
            {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/site/${iot:Connection.Thing.Attributes[site]}/*"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/site/*"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/domains/${iot:DomainName}"}]}"#;
        a.create_policy("dev", doc, &[]).unwrap();
        a.attach_policy("dev", &arn).unwrap();
        // The client id must name a thing attached to the certificate.
        assert!(auth.authenticate(&info(&p, "dev-1")).is_err());
        let r = a.registry();
        let attrs = |v: &str| Some(registry::AttributePayload { attributes: Some([("site".to_string(), v.to_string())].into()), merge: false });
        r.create_thing(NewThing { name: "dev-1".into(), attributes: attrs("lab"), ..Default::default() }).unwrap();
        r.attach_thing_principal("dev-1", &arn, PrincipalType::NonExclusive).unwrap();
        let conn = auth.authenticate(&info(&p, "dev-1")).expect("connects");
        assert_eq!(conn.principal(), Some(created.id.as_str()));
        assert!(conn.can_publish("site/lab/temp"));
        assert!(!conn.can_publish("site/home/temp"));
        assert!(!conn.can_retain("site/lab/temp"));
        assert!(conn.can_subscribe("site/#"));
        assert!(!conn.can_subscribe("other/#"));
        // iot:DomainName is the TLS server name the device asked for.
        assert!(conn.can_subscribe("domains/iot.example.com"));
        assert!(!conn.can_subscribe("domains/other.example.com"));
        // A thing attribute changes: the cached decision follows once the thing's document changes.
        r.update_thing(ThingUpdate { name: "dev-1".into(), attributes: attrs("home"), ..Default::default() }).unwrap();
        assert!(!conn.can_publish("site/lab/temp"));
        assert!(conn.can_receive("site/home/x"));
        // Deactivated: nothing more is allowed, and new connections are refused.
        a.update_certificate(&created.id, "INACTIVE").unwrap();
        assert!(!conn.can_receive("site/home/x"));
        assert!(auth.authenticate(&info(&p, "dev-1")).is_err());
        conn.denied("publish");
        assert_eq!(a.denials().get("dev-1", &created.id, "publish"), 1);
        // Without a certificate: refused.
        let none = PeerInfo { addr: "127.0.0.1:1".parse().unwrap(), transport: "wss", cert: None, server_name: None };
        assert!(auth.authenticate(&info(&none, "x")).is_err());
    }

    #[test]
    fn a_connections_decisions_stay_cached_until_a_document_they_depend_on_changes() {
        let f = fixture();
        let a = &f.authz;
        let r = a.registry();
        let created = a.create_keys_and_certificate(true).unwrap().certificate;
        let der = identity::x509::pem_to_der(&created.pem).unwrap();
        let arn = a.cert_arn(&created.id);
        a.create_policy("connect", r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#, &[]).unwrap();
        a.attach_policy("connect", &arn).unwrap();
        r.create_thing(NewThing { name: "dev-1".into(), ..Default::default() }).unwrap();
        r.attach_thing_principal("dev-1", &arn, PrincipalType::NonExclusive).unwrap();
        r.create_thing_group(registry::NewThingGroup { name: "fleet".into(), ..Default::default() }).unwrap();
        r.add_thing_to_thing_group(&by_name("fleet"), &by_name("dev-1")).unwrap();
        let p = peer(&der);
        let facts = p.cert.as_deref().unwrap();
        let conn = CertConnection::new(a, &info(&p, "dev-1"), facts);
        assert!(!conn.decide(Action::Publish, "fleet/x"));
        let context = || conn.state.lock().unwrap().0.clone();
        let before = context();
        // Other things, groups and policies change: the cache stays warm.
        r.create_thing(NewThing { name: "dev-2".into(), ..Default::default() }).unwrap();
        r.update_thing(ThingUpdate { name: "dev-2".into(), attributes: None, ..Default::default() }).unwrap();
        a.create_policy("other", r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#, &[]).unwrap();
        assert!(!conn.decide(Action::Publish, "fleet/x"));
        assert!(Arc::ptr_eq(&before, &context()), "a change of other documents emptied the cache");
        // A policy attached to the thing's group reaches the decision.
        let group_arn = r.arn(registry::ResourceKind::ThingGroup, "fleet");
        a.create_policy("fleet", r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/fleet/*"}]}"#, &[]).unwrap();
        a.attach_policy("fleet", &group_arn).unwrap();
        assert!(conn.decide(Action::Publish, "fleet/x"));
        // So does a new version of that policy, and then the thing leaving the group.
        let narrower = r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/fleet/y"}]}"#;
        a.create_policy_version("fleet", narrower, true).unwrap();
        assert!(!conn.decide(Action::Publish, "fleet/x") && conn.decide(Action::Publish, "fleet/y"));
        r.remove_thing_from_thing_group(&by_name("fleet"), &by_name("dev-1")).unwrap();
        assert!(!conn.decide(Action::Publish, "fleet/y"));
    }

    #[tokio::test]
    async fn the_local_policy_limits_loopback_clients() {
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"},{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/locked/*"},
            {"Effect":"Deny","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/banned"}]}"#;
        let local = LocalPolicy::new(Some(identity::policy::parse(doc).unwrap()), "us-east-1", "123456789012", Arc::default());
        let p = PeerInfo { addr: "127.0.0.1:1".parse().unwrap(), transport: "mqtt", cert: None, server_name: None };
        assert!(local.connect(info(&p, "banned")).await.is_err());
        let c = local.connect(info(&p, "ok")).await.expect("connects");
        assert!(c.can_publish("open/x") && !c.can_publish("locked/x") && c.can_subscribe("locked/#"));
        let all = LocalPolicy::new(None, "us-east-1", "123456789012", Arc::default());
        assert!(all.connect(info(&p, "banned")).await.is_ok());
    }
}
