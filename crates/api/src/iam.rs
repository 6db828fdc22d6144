//! IAM users with access keys and inline policies: the subset of IAM that `aws iam` and boto3
//! use (AWS's query protocol: a form-encoded `Action`, XML answers), STS GetCallerIdentity, and
//! the authorization of every API call. A root key may do anything; a user's key only what its
//! policies allow — evaluated as IAM does (explicit deny wins, default deny) on the operation's
//! action (`iot:CreateThing`, `iot:Publish`, `lambda:InvokeFunction`, `iam:CreateUser`, ...)
//! and resource ARN.

use crate::keys::AccessKey;
use crate::service::{ApiRequest, ApiResponse, Body, BoxReply, Reply, Service};
use crate::{ApiError, Keys};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use store::{DocOp, Documents, StoreError};

const KIND: &str = "iam-user";

/// A user and its inline policies, parsed.
type UserPolicies = (User, Vec<identity::policy::Policy>);
/// Inline policies per user (AWS: 2,048 characters each, 10 KB in all; here a count).
const MAX_POLICIES: usize = 10;
/// Access keys per user (AWS: 2).
const MAX_KEYS: usize = 2;
const MAX_POLICY_BYTES: usize = 10 * 1024;

/// An IAM user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub id: String,
    pub created_ms: i64,
    /// Inline policies by name (the documents as given).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
}

/// The users, backed by the documents table (cached briefly for the per-call authorization).
#[derive(Debug)]
pub struct Users {
    docs: Arc<Documents>,
    /// Parsed policies by user, with the revision of the user document they were parsed from.
    parsed: Mutex<HashMap<String, (u64, Arc<UserPolicies>)>>,
}

impl Users {
    pub fn new(docs: Arc<Documents>) -> Users {
        Users { docs, parsed: Mutex::new(HashMap::new()) }
    }

    fn load(&self, name: &str) -> Option<User> {
        self.docs.get(KIND, name).ok().flatten().and_then(|v| serde_json::from_str(&v).ok())
    }

    /// A user and its parsed policies, as stored now (parsed again only when the user's
    /// document has a new revision).
    fn with_policies(&self, name: &str) -> Option<Arc<UserPolicies>> {
        // Read before the cache is locked: every signed request comes here on a Tokio worker,
        // and none may wait for a lock held across a database call.
        let doc = self.docs.state().get_blocking(KIND, name).ok().flatten();
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        let Some(doc) = doc else {
            parsed.remove(name);
            return None;
        };
        if let Some((rev, u)) = parsed.get(name)
            && *rev == doc.rev
        {
            return Some(u.clone());
        }
        let u: User = serde_json::from_str(&doc.value).ok()?;
        let policies = u.policies.values().filter_map(|d| identity::policy::parse_iam(d).ok()).collect();
        let u = Arc::new((u, policies));
        parsed.insert(name.to_string(), (doc.rev, u.clone()));
        Some(u)
    }

    fn put(&self, u: &User) -> Result<(), StoreError> {
        self.docs.apply(&[DocOp::Put { kind: KIND, key: u.name.clone(), value: serde_json::to_string(u).unwrap_or_default() }])?;
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.docs.apply(&[DocOp::Delete { kind: KIND, key: name.to_string() }])?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<User>, StoreError> {
        let mut v: Vec<User> = self.docs.load(KIND)?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }
}

/// Who signed a request.
pub enum Caller {
    Root,
    User(Arc<(User, Vec<identity::policy::Policy>)>),
}

/// The IAM action of an operation (AWS names a few differently from the operation).
fn action(prefix: &str, op: &str) -> String {
    let name = match (prefix, op) {
        ("lambda", "Invoke") => "InvokeFunction",
        ("lambda", "ListFunctions20150331" | "ListFunctions") => "ListFunctions",
        (_, op) => op,
    };
    format!("{prefix}:{name}")
}

/// The resource ARN an operation acts on, from its parameters (path labels, or the query
/// protocol's fields): `*` when it names none.
fn resource(service: &str, params: &HashMap<String, String>, region: &str, account: &str) -> String {
    let get = |k: &str| params.get(k).map(String::as_str);
    let iot = |kind: &str, name: &str| format!("arn:aws:iot:{region}:{account}:{kind}/{name}");
    match service {
        "iot" | "iot-data" => {
            for (param, kind) in [
                ("thingName", "thing"),
                ("thingGroupName", "thinggroup"),
                ("thingTypeName", "thingtype"),
                ("billingGroupName", "billinggroup"),
                ("policyName", "policy"),
                ("certificateId", "cert"),
                ("caCertificateId", "cacert"),
                ("ruleName", "rule"),
                ("authorizerName", "authorizer"),
                ("topic", "topic"),
            ] {
                if let Some(v) = get(param) {
                    return iot(kind, v);
                }
            }
            "*".into()
        }
        "lambda" => get("FunctionName").map_or("*".into(), |f| {
            let name = f.rsplit(':').next().unwrap_or(f);
            format!("arn:aws:lambda:{region}:{account}:function:{name}")
        }),
        "iam" => get("UserName").map_or("*".into(), |u| format!("arn:aws:iam::{account}:user/{u}")),
        _ => "*".into(),
    }
}

/// Decides a call by a user's key: 403 AccessDeniedException unless its policies allow it.
pub fn authorize(caller: &Caller, model: &awsmodel::Service, op: &str, params: &HashMap<String, String>, region: &str, account: &str) -> Result<(), ApiError> {
    let Caller::User(u) = caller else { return Ok(()) };
    if model.name == "sts" && op == "GetCallerIdentity" {
        return Ok(()); // AWS: needs no permission
    }
    let action = action(model.iam_prefix, op);
    let resource = resource(model.name, params, region, account);
    let user_arn = format!("arn:aws:iam::{account}:user/{}", u.0.name);
    let vars = |k: &str| match k {
        "aws:username" => Some(u.0.name.clone()),
        "aws:userid" => Some(u.0.id.clone()),
        "aws:PrincipalArn" => Some(user_arn.clone()),
        _ => None,
    };
    let req = identity::policy::Request { action: &action, resource: &resource, vars: &vars };
    if identity::policy::evaluate(u.1.iter(), &req).allowed() {
        return Ok(());
    }
    tracing::info!(user = %u.0.name, %action, %resource, "API call denied by IAM policy");
    Err(ApiError::new("AccessDeniedException", format!("User: {user_arn} is not authorized to perform: {action} on resource: {resource}")))
}

/// Who signed with `key`.
pub fn caller(keys: &Keys, users: &Users, key: &str) -> Result<Caller, ApiError> {
    match keys.get(key).and_then(|k| k.user) {
        None => Ok(Caller::Root),
        Some(name) => users
            .with_policies(&name)
            .map(Caller::User)
            .ok_or_else(|| ApiError::new("UnrecognizedClientException", "The security token included in the request is invalid.")),
    }
}

/// The fields of a query-protocol request: the form body and the query string.
pub fn form_fields(body: &[u8], query: &[(String, String)]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = query.iter().cloned().collect();
    for pair in String::from_utf8_lossy(body).split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let d = |s: &str| awsmodel::route::decode(&s.replace('+', " "));
        if let (Some(k), Some(v)) = (d(k), d(v)) {
            out.insert(k, v);
        }
    }
    out
}

/// An XML-escaped string.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// AWS's query-protocol error document.
pub fn xml_error(e: &ApiError, request_id: &str) -> String {
    let code = match e.error_type {
        "AccessDeniedException" => "AccessDenied",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        other => other,
    };
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        esc(code),
        esc(&e.message),
        esc(request_id)
    )
}

fn iso(ms: i64) -> String {
    let secs = (ms / 1000).max(0) as u64;
    let d = identity::sigv4::format_amz_date(secs); // yyyymmddThhmmssZ
    format!("{}-{}-{}T{}:{}:{}Z", &d[0..4], &d[4..6], &d[6..8], &d[9..11], &d[11..13], &d[13..15])
}

fn xml_ok(op: &str, ns: &str, result: &str, request_id: &str) -> Reply {
    let body = format!(
        "<{op}Response xmlns=\"{ns}\"><{op}Result>{result}</{op}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
        esc(request_id)
    );
    Ok(ApiResponse { status: 200, body: Body::Bytes { content_type: "text/xml", data: body.into() }, headers: Vec::new() })
}

const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The `iam` service.
pub struct Iam {
    keys: Arc<Keys>,
    users: Arc<Users>,
    account: String,
}

/// The `sts` service.
pub struct Sts {
    keys: Arc<Keys>,
    account: String,
}

impl Iam {
    pub fn new(keys: Arc<Keys>, users: Arc<Users>, account: &str) -> Iam {
        Iam { keys, users, account: account.to_string() }
    }
}

impl Sts {
    pub fn new(keys: Arc<Keys>, account: &str) -> Sts {
        Sts { keys, account: account.to_string() }
    }
}

fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    f.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| ApiError::new("ValidationError", format!("{name} is required")))
}

fn no_such(what: &str) -> ApiError {
    ApiError::new("NoSuchEntity", what.to_string())
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// AWS's rule for user and policy names: 1..=64 (128 for policies) of `\w+=,.@-`.
fn check_name(kind: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b)) {
        return Err(ApiError::new("ValidationError", format!("{kind} {v:?} must be 1 to {max} letters, digits or _+=,.@-")));
    }
    Ok(())
}

impl Iam {
    fn user_xml(&self, u: &User) -> String {
        format!(
            "<Path>/</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>arn:aws:iam::{}:user/{}</Arn><CreateDate>{}</CreateDate>",
            esc(&u.name),
            esc(&u.id),
            self.account,
            esc(&u.name),
            iso(u.created_ms)
        )
    }

    fn user(&self, name: &str) -> Result<User, ApiError> {
        self.users.load(name).ok_or_else(|| no_such(&format!("The user with name {name} cannot be found.")))
    }

    fn keys_of(&self, user: &str) -> Result<Vec<AccessKey>, ApiError> {
        Ok(self.keys.list().map_err(store_err)?.into_iter().filter(|k| k.user.as_deref() == Some(user)).collect())
    }

    fn run(&self, op: &str, f: &HashMap<String, String>, rid: &str) -> Reply {
        let ok = |result: String| xml_ok(op, IAM_NS, &result, rid);
        match op {
            "CreateUser" => {
                let name = field(f, "UserName")?;
                check_name("UserName", name, 64)?;
                if self.users.load(name).is_some() {
                    return Err(ApiError::new("EntityAlreadyExists", format!("User with name {name} already exists.")));
                }
                let id = crate::keys::random_id("AIDA", 16);
                let u = User { name: name.to_string(), id, created_ms: broker::message::unix_ms(), policies: BTreeMap::new() };
                self.users.put(&u).map_err(store_err)?;
                ok(format!("<User>{}</User>", self.user_xml(&u)))
            }
            "GetUser" => {
                let name = match f.get("UserName") {
                    Some(n) => n.clone(),
                    None => return Err(ApiError::new("ValidationError", "UserName is required (root has no IAM user)")),
                };
                let u = self.user(&name)?;
                ok(format!("<User>{}</User>", self.user_xml(&u)))
            }
            "ListUsers" => {
                let mut x = String::from("<Users>");
                for u in self.users.list().map_err(store_err)? {
                    let _ = write!(x, "<member>{}</member>", self.user_xml(&u));
                }
                x.push_str("</Users><IsTruncated>false</IsTruncated>");
                ok(x)
            }
            "DeleteUser" => {
                let u = self.user(field(f, "UserName")?)?;
                if !u.policies.is_empty() || !self.keys_of(&u.name)?.is_empty() {
                    return Err(ApiError::new("DeleteConflict", "Cannot delete entity, must delete policies and access keys first."));
                }
                self.users.delete(&u.name).map_err(store_err)?;
                ok(String::new())
            }
            "CreateAccessKey" => {
                let u = self.user(field(f, "UserName")?)?;
                if self.keys_of(&u.name)?.len() >= MAX_KEYS {
                    return Err(ApiError::new("LimitExceeded", format!("Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}")));
                }
                let k = self.keys.create_for(Some(&u.name), "").map_err(store_err)?;
                ok(format!(
                    "<AccessKey><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>Active</Status><SecretAccessKey>{}</SecretAccessKey><CreateDate>{}</CreateDate></AccessKey>",
                    esc(&u.name),
                    k.id,
                    esc(&k.secret),
                    iso(k.created_ms)
                ))
            }
            "ListAccessKeys" => {
                let u = self.user(field(f, "UserName")?)?;
                let mut x = String::from("<AccessKeyMetadata>");
                for k in self.keys_of(&u.name)? {
                    let _ = write!(
                        x,
                        "<member><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate></member>",
                        esc(&u.name),
                        k.id,
                        k.status,
                        iso(k.created_ms)
                    );
                }
                x.push_str("</AccessKeyMetadata><IsTruncated>false</IsTruncated>");
                ok(x)
            }
            "UpdateAccessKey" | "DeleteAccessKey" => {
                let u = self.user(field(f, "UserName")?)?;
                let id = field(f, "AccessKeyId")?;
                let mut k = self.keys.load(id).filter(|k| k.user.as_deref() == Some(&u.name)).ok_or_else(|| no_such(&format!("The Access Key with id {id} cannot be found.")))?;
                if op == "DeleteAccessKey" {
                    self.keys.delete(id).map_err(store_err)?;
                } else {
                    let status = field(f, "Status")?;
                    if !matches!(status, "Active" | "Inactive") {
                        return Err(ApiError::new("ValidationError", format!("Status must be Active or Inactive, not {status:?}")));
                    }
                    k.status = status.to_string();
                    self.keys.put(&k).map_err(store_err)?;
                }
                ok(String::new())
            }
            "PutUserPolicy" => {
                let mut u = self.user(field(f, "UserName")?)?;
                let name = field(f, "PolicyName")?;
                check_name("PolicyName", name, 128)?;
                let doc = field(f, "PolicyDocument")?;
                if doc.len() > MAX_POLICY_BYTES {
                    return Err(ApiError::new("LimitExceeded", format!("The policy document is larger than {MAX_POLICY_BYTES} bytes")));
                }
                identity::policy::parse_iam(doc).map_err(|e| ApiError::new("MalformedPolicyDocument", e.0))?;
                if !u.policies.contains_key(name) && u.policies.len() >= MAX_POLICIES {
                    return Err(ApiError::new("LimitExceeded", format!("Cannot exceed quota for inline policies per user: {MAX_POLICIES}")));
                }
                u.policies.insert(name.to_string(), doc.to_string());
                self.users.put(&u).map_err(store_err)?;
                ok(String::new())
            }
            "GetUserPolicy" => {
                let u = self.user(field(f, "UserName")?)?;
                let name = field(f, "PolicyName")?;
                let doc = u.policies.get(name).ok_or_else(|| no_such(&format!("The user policy with name {name} cannot be found.")))?;
                ok(format!(
                    "<UserName>{}</UserName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                    esc(&u.name),
                    esc(name),
                    esc(&url_encode(doc))
                ))
            }
            "ListUserPolicies" => {
                let u = self.user(field(f, "UserName")?)?;
                let mut x = String::from("<PolicyNames>");
                for n in u.policies.keys() {
                    let _ = write!(x, "<member>{}</member>", esc(n));
                }
                x.push_str("</PolicyNames><IsTruncated>false</IsTruncated>");
                ok(x)
            }
            "DeleteUserPolicy" => {
                let mut u = self.user(field(f, "UserName")?)?;
                let name = field(f, "PolicyName")?;
                if u.policies.remove(name).is_none() {
                    return Err(no_such(&format!("The user policy with name {name} cannot be found.")));
                }
                self.users.put(&u).map_err(store_err)?;
                ok(String::new())
            }
            other => Err(ApiError::not_implemented("iam", other)),
        }
    }
}

/// Percent-encodes a policy document as IAM returns it (botocore decodes it back).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl Service for Iam {
    fn models(&self) -> &'static [&'static str] {
        &["iam"]
    }
    fn call(&self, req: ApiRequest) -> BoxReply<'_> {
        Box::pin(async move { self.run(req.op, &req.params, &req.request_id) })
    }
}

impl Service for Sts {
    fn models(&self) -> &'static [&'static str] {
        &["sts"]
    }
    fn call(&self, req: ApiRequest) -> BoxReply<'_> {
        Box::pin(async move {
            if req.op != "GetCallerIdentity" {
                return Err(ApiError::not_implemented("sts", req.op));
            }
            let (arn, id) = match self.keys.get(&req.caller.access_key).and_then(|k| k.user) {
                Some(u) => (format!("arn:aws:iam::{}:user/{u}", self.account), req.caller.access_key.clone()),
                None => (format!("arn:aws:iam::{}:root", self.account), self.account.clone()),
            };
            let result = format!("<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>", esc(&arn), esc(&id), self.account);
            xml_ok("GetCallerIdentity", STS_NS, &result, &req.request_id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_resources_follow_aws_names() {
        assert_eq!(action("iot", "CreateThing"), "iot:CreateThing");
        assert_eq!(action(awsmodel::service("iot-data").unwrap().iam_prefix, "Publish"), "iot:Publish");
        assert_eq!(action("lambda", "Invoke"), "lambda:InvokeFunction");
        let p = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(resource("iot", &p("thingName", "t1"), "us-east-1", "1"), "arn:aws:iot:us-east-1:1:thing/t1");
        assert_eq!(resource("iot-data", &p("topic", "a/b"), "r", "1"), "arn:aws:iot:r:1:topic/a/b");
        assert_eq!(resource("lambda", &p("FunctionName", "arn:aws:lambda:r:1:function:f"), "r", "1"), "arn:aws:lambda:r:1:function:f");
        assert_eq!(resource("iam", &p("UserName", "bob"), "r", "1"), "arn:aws:iam::1:user/bob");
        assert_eq!(resource("iot", &HashMap::new(), "r", "1"), "*");
    }

    #[test]
    fn form_fields_decode_plus_and_percent() {
        let f = form_fields(b"Action=PutUserPolicy&PolicyDocument=%7B%22a%22%3A+1%7D", &[]);
        assert_eq!(f["PolicyDocument"], "{\"a\": 1}");
        assert_eq!(url_encode("{\"a\": 1}"), "%7B%22a%22%3A%201%7D");
    }
}
