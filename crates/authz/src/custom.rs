//! Custom authentication, as AWS IoT's custom authorizers do it: the authorizer's function (a
//! Ferrite function) gets AWS's event (`protocols`, `protocolData.mqtt {username, password
//! (base64), clientId}`, `protocolData.tls {serverName}`, `protocolData.http {headers,
//! queryString}`, `connectionMetadata.id`, `token`, `signatureVerified`) and answers
//! `{isAuthenticated, principalId, policyDocuments, disconnectAfterInSeconds,
//! refreshAfterInSeconds}`. [`CustomAuthenticator`] wraps a listener's authenticator: a client
//! without a certificate on a TLS listener, or one whose MQTT username names an authorizer
//! (`user?x-amz-customauthorizer-name=NAME`) or meets a default authorizer on a loopback listener,
//! is decided by the function and then held to the returned policies like a certificate client.

use crate::connect::{LocalConnection, usable};
use crate::error::{AuthzError, Result};
use crate::{Authorizer, Authz};
use base64::Engine as _;
use broker::auth::{Authenticator, Authorization, ConnectInfo, ConnectResult};
use mqtt::ReasonCode;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The username parameter naming the authorizer.
pub const AUTHORIZER_PARAM: &str = "x-amz-customauthorizer-name";
/// The username parameter carrying the token's signature.
pub const SIGNATURE_PARAM: &str = "x-amz-customauthorizer-signature";
/// Policy documents an answer may carry (AWS's limit).
const MAX_POLICIES: usize = 10;
/// The longest connection an answer may allow (AWS: 24 hours).
const MAX_DISCONNECT_AFTER: i64 = 86_400;

/// The MQTT part of the event: what CONNECT carried.
#[derive(Debug, Clone, Default)]
pub struct MqttContext {
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    pub client_id: Option<String>,
}

/// What a client presented, for the authorizer's event.
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    pub token: Option<String>,
    /// Base64 signature of the token.
    pub token_signature: Option<String>,
    pub mqtt: Option<MqttContext>,
    /// The TLS server name, when the connection is TLS (`Some("")` when unknown).
    pub tls_server_name: Option<String>,
    /// HTTP headers and query string.
    pub http: Option<(BTreeMap<String, String>, Option<String>)>,
}

/// The function's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerAnswer {
    pub is_authenticated: bool,
    pub principal_id: String,
    pub policy_documents: Vec<String>,
    pub disconnect_after_secs: Option<i64>,
    pub refresh_after_secs: Option<i64>,
}

/// Percent-decodes a query value (`+` is kept: tokens are often base64); bytes that are not
/// UTF-8 become U+FFFD.
fn decode(s: &str) -> String {
    String::from_utf8_lossy(&awscore::percent_decode_bytes(s)).into_owned()
}

/// The query parameters of an MQTT username (`name?a=1&b=2`).
pub fn username_params(username: &str) -> HashMap<String, String> {
    let Some((_, q)) = username.split_once('?') else { return HashMap::new() };
    q.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').map_or((decode(p), String::new()), |(k, v)| (decode(k), decode(v)))).collect()
}

/// AWS's event for `a`, with the token's signature checked when signing is enabled.
fn event(a: &Authorizer, r: &AuthRequest) -> Result<Value> {
    let verified = match (&r.token, &r.token_signature) {
        _ if a.signing_disabled => false,
        (Some(token), Some(sig)) => {
            let sig = base64::engine::general_purpose::STANDARD.decode(sig.trim()).map_err(|_| AuthzError::Invalid("the token signature is not base64".into()))?;
            a.token_signing_public_keys.values().any(|pem| identity::x509::verify_rsa_sha256(pem, token.as_bytes(), &sig))
        }
        _ => return Err(AuthzError::Invalid("the authorizer requires a signed token: the token or its signature is missing".into())),
    };
    if !a.signing_disabled && !verified {
        return Err(AuthzError::Invalid("the token signature is not valid for any of the authorizer's keys".into()));
    }
    let mut protocols = Vec::new();
    let mut data = Map::new();
    if let Some(name) = &r.tls_server_name {
        protocols.push("tls");
        data.insert("tls".into(), if name.is_empty() { json!({}) } else { json!({ "serverName": name }) });
    }
    if let Some((headers, query)) = &r.http {
        protocols.push("http");
        let mut h = json!({ "headers": headers });
        if let Some(q) = query {
            h["queryString"] = json!(q);
        }
        data.insert("http".into(), h);
    }
    if let Some(MqttContext { username, password, client_id }) = &r.mqtt {
        protocols.push("mqtt");
        let mut m = Map::new();
        if let Some(u) = username {
            m.insert("username".into(), json!(u));
        }
        if let Some(p) = password {
            m.insert("password".into(), json!(base64::engine::general_purpose::STANDARD.encode(p)));
        }
        if let Some(c) = client_id {
            m.insert("clientId".into(), json!(c));
        }
        data.insert("mqtt".into(), Value::Object(m));
    }
    let mut ev = json!({
        "protocols": protocols,
        "protocolData": data,
        "connectionMetadata": { "id": crate::random_hex(16) },
        "signatureVerified": verified,
    });
    if let Some(t) = &r.token {
        ev["token"] = json!(t);
    }
    Ok(ev)
}

fn bad(message: impl Into<String>) -> AuthzError {
    AuthzError::InvalidResponse(message.into())
}

/// Reads the function's answer as AWS checks it.
fn answer(v: &Value) -> Result<AuthorizerAnswer> {
    let is_authenticated = v.get("isAuthenticated").and_then(Value::as_bool).ok_or_else(|| bad("the authorizer's answer has no boolean isAuthenticated"))?;
    let principal_id = match v.get("principalId") {
        Some(Value::String(p)) if !p.is_empty() && p.len() <= 128 && p.chars().all(|c| c.is_ascii_alphanumeric()) => p.clone(),
        Some(_) => return Err(bad("principalId must be 1 to 128 letters or digits")),
        None if !is_authenticated => String::new(),
        None => return Err(bad("the authorizer's answer has no principalId")),
    };
    let policy_documents: Vec<String> = match v.get("policyDocuments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|d| match d {
                Value::String(s) => Ok(s.clone()),
                Value::Object(_) => Ok(d.to_string()),
                _ => Err(bad("policyDocuments must be a list of policy documents (JSON strings)")),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad("policyDocuments must be a list")),
    };
    if policy_documents.len() > MAX_POLICIES {
        return Err(bad(format!("at most {MAX_POLICIES} policy documents")));
    }
    let secs = |k: &str| -> Result<Option<i64>> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n.as_i64().filter(|s| (1..=MAX_DISCONNECT_AFTER).contains(s)).map(Some).ok_or_else(|| bad(format!("{k} must be from 1 to {MAX_DISCONNECT_AFTER}"))),
        }
    };
    Ok(AuthorizerAnswer { is_authenticated, principal_id, policy_documents, disconnect_after_secs: secs("disconnectAfterInSeconds")?, refresh_after_secs: secs("refreshAfterInSeconds")? })
}

impl Authz {
    /// Calls `a`'s function with AWS's event for `r` and reads its answer.
    pub async fn invoke_authorizer(&self, a: &Authorizer, r: &AuthRequest) -> Result<AuthorizerAnswer> {
        let functions = self.functions.as_ref().ok_or_else(|| AuthzError::Internal("functions are not available".into()))?;
        let ev = event(a, r)?;
        let out = functions
            .invoke(&a.function_arn, bytes::Bytes::from(ev.to_string()), functions::Mode::RequestResponse)
            .await
            .map_err(|e| bad(format!("the authorizer function could not be invoked: {e}")))?;
        if out.function_error.is_some() {
            return Err(bad(format!("the authorizer function failed: {}", out.error_message().unwrap_or_default())));
        }
        let v: Value = serde_json::from_slice(&out.payload).map_err(|_| bad("the authorizer function's result is not JSON"))?;
        answer(&v)
    }

    /// TestInvokeAuthorizer.
    pub async fn test_invoke_authorizer(&self, name: &str, r: &AuthRequest) -> Result<AuthorizerAnswer> {
        let a = self.describe_authorizer(name)?;
        self.invoke_authorizer(&a, r).await
    }
}

/// A listener's authenticator with custom authorizers in front of it.
pub struct CustomAuthenticator {
    authz: Arc<Authz>,
    inner: Arc<dyn Authenticator>,
    tls: bool,
}

impl CustomAuthenticator {
    /// `inner` decides the connections no authorizer applies to; `tls`: the listener is TLS
    /// (certificate clients go to `inner`, the others to the named or default authorizer).
    pub fn new(authz: Arc<Authz>, inner: Arc<dyn Authenticator>, tls: bool) -> CustomAuthenticator {
        CustomAuthenticator { authz, inner, tls }
    }

    async fn custom(&self, a: Authorizer, info: &ConnectInfo<'_>) -> ConnectResult {
        let params = info.username.map(username_params).unwrap_or_default();
        let req = AuthRequest {
            token: a.token_key_name.as_ref().and_then(|k| params.get(k).cloned()),
            token_signature: params.get(SIGNATURE_PARAM).cloned(),
            mqtt: Some(MqttContext { username: info.username.map(str::to_string), password: info.password.map(<[u8]>::to_vec), client_id: Some(info.client_id.to_string()) }),
            tls_server_name: self.tls.then(|| info.peer.server_name.as_deref().unwrap_or("").to_string()),
            http: None,
        };
        let refuse = |code: ReasonCode, why: &str| {
            tracing::info!(client_id = info.client_id, authorizer = %a.name, why, "custom authorizer refused the connection");
            self.authz.denials.count(info.client_id, "", "connect");
            Err(code)
        };
        let ans = match self.authz.invoke_authorizer(&a, &req).await {
            Ok(ans) => ans,
            Err(e) => return refuse(ReasonCode::NOT_AUTHORIZED, &e.to_string()),
        };
        if !ans.is_authenticated {
            return refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD, "isAuthenticated is false");
        }
        let mut policies = Vec::new();
        for d in &ans.policy_documents {
            match identity::policy::parse(d) {
                Ok(p) => policies.push(Arc::new(p)),
                Err(e) => return refuse(ReasonCode::NOT_AUTHORIZED, &format!("a returned policy document is not valid: {e}")),
            }
        }
        let mut vars = BTreeMap::from([("aws:SourceIp".to_string(), info.peer.addr.ip().to_string())]);
        if usable(info.client_id) {
            vars.insert("iot:ClientId".into(), info.client_id.to_string());
        }
        let conn = Arc::new(LocalConnection {
            policies,
            prefix: self.authz.resource_prefix(),
            client_id: info.client_id.to_string(),
            principal: Some(ans.principal_id.clone()),
            vars,
            cache: Mutex::new(HashMap::new()),
            denials: self.authz.denials.clone(),
        });
        if !conn.may_connect() {
            return refuse(ReasonCode::NOT_AUTHORIZED, "iot:Connect is not allowed by the returned policies");
        }
        if let (Some(secs), Some(broker)) = (ans.disconnect_after_secs, self.authz.reactions.broker.clone()) {
            let weak = Arc::downgrade(&conn);
            let client_id = info.client_id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs as u64)).await;
                // Still the same connection (its rights are alive): end it.
                if weak.upgrade().is_some() && broker.disconnect_client(&client_id, false, false) {
                    tracing::info!(client_id = %client_id, "disconnectAfterInSeconds elapsed: disconnected");
                }
            });
        }
        Ok(conn as Arc<dyn Authorization>)
    }
}

impl Authenticator for CustomAuthenticator {
    fn connect<'a>(&'a self, info: ConnectInfo<'a>) -> Pin<Box<dyn Future<Output = ConnectResult> + Send + 'a>> {
        Box::pin(async move {
            if self.tls && info.peer.cert.is_some() {
                return self.inner.connect(info).await;
            }
            let named = info.username.map(username_params).and_then(|mut p| p.remove(AUTHORIZER_PARAM));
            match self.authz.authorizer_for(named.as_deref()) {
                Ok(Some(a)) => self.custom(a, &info).await,
                Ok(None) => self.inner.connect(info).await,
                Err(why) => {
                    tracing::info!(client_id = info.client_id, why, "custom authorizer unavailable: not authorized");
                    self.authz.denials.count(info.client_id, "", "connect");
                    Err(ReasonCode::NOT_AUTHORIZED)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_answers_and_events() {
        let p = username_params("user?x-amz-customauthorizer-name=auth%2D1&tok=a+b%3D&flag");
        assert_eq!(p.get(AUTHORIZER_PARAM).map(String::as_str), Some("auth-1"));
        assert_eq!(p.get("tok").map(String::as_str), Some("a+b="));
        assert!(username_params("plain").is_empty());
        let ok = answer(&json!({"isAuthenticated": true, "principalId": "p1", "disconnectAfterInSeconds": 3600,
            "policyDocuments": ["{\"Version\":\"2012-10-17\",\"Statement\":[]}"]}))
        .unwrap();
        assert_eq!((ok.principal_id.as_str(), ok.disconnect_after_secs, ok.policy_documents.len()), ("p1", Some(3600), 1));
        assert!(answer(&json!({"principalId": "p"})).is_err());
        assert!(answer(&json!({"isAuthenticated": true, "principalId": "not ok!"})).is_err());
        assert!(!answer(&json!({"isAuthenticated": false})).unwrap().is_authenticated);
        let a = Authorizer {
            name: "a".into(),
            function_arn: "f".into(),
            token_key_name: Some("tok".into()),
            token_signing_public_keys: BTreeMap::new(),
            active: true,
            signing_disabled: true,
            enable_caching_for_http: false,
            created_ms: 0,
            modified_ms: 0,
            tags: BTreeMap::new(),
        };
        let r = AuthRequest { token: Some("t".into()), mqtt: Some(MqttContext { username: Some("u".into()), password: Some(b"pw".to_vec()), client_id: Some("c".into()) }), tls_server_name: Some(String::new()), ..Default::default() };
        let ev = event(&a, &r).unwrap();
        assert_eq!(ev["protocols"], json!(["tls", "mqtt"]));
        assert_eq!(ev["protocolData"]["mqtt"]["password"], json!("cHc="));
        assert_eq!((ev["token"].as_str(), ev["signatureVerified"].as_bool()), (Some("t"), Some(false)));
        let signed = Authorizer { signing_disabled: false, ..a };
        assert!(event(&signed, &r).is_err());
    }
}
