//! The `iot` service (AWS IoT control plane): the thing registry — things, thing types, thing
//! groups, billing groups, tags, thing principals — plus DescribeEndpoint and the event
//! configuration, and device identity — certificates, CA certificates, policies and their
//! attachments, custom authorizers. Maps rest-json requests onto [`registry::Registry`] and [`authz::Authz`] and
//! builds AWS's JSON. A registry change that may change an authorization decision (a thing, its
//! attributes, groups or principals) bumps the authorization generation.
//!
//! Handlers are synchronous (the registry commits to SQLite before answering) and run on the
//! blocking pool.

mod authorizers;
mod billing;
mod certificates;
pub mod connectivity;
mod events;
mod groups;
mod misc;
mod policies;
mod things;
mod topic_rules;
mod types;

pub use crate::Input;
pub use events::BrokerEvents;
pub use topic_rules::RulesMetrics;

use crate::service::{ApiRequest, ApiResponse, BoxReply, Reply, Service};
use crate::ApiError;
use registry::{Page, Registry, RegistryError};
use serde_json::{Value, json};
use std::sync::Arc;

/// The `iot` service.
pub struct Iot {
    inner: Arc<Inner>,
    /// The rules engine, when running (topic_rules.rs).
    rules: Option<Arc<rules::Rules>>,
}

struct Inner {
    registry: Arc<Registry>,
    authz: Arc<authz::Authz>,
    /// The host DescribeEndpoint answers.
    endpoint_host: String,
    /// The rules engine, when running: the owner of rule ARNs' tags.
    rules: Option<Arc<rules::Rules>>,
    /// What the broker's tap reports (GetThingConnectivityData).
    connectivity: Arc<connectivity::Connectivity>,
}

impl Iot {
    /// The service over a loaded registry and the certificate and policy service (which asks
    /// the same registry).
    pub fn new(authz: Arc<authz::Authz>, endpoint_host: impl Into<String>) -> Iot {
        let connectivity = Arc::default();
        Iot { inner: Arc::new(Inner { registry: authz.registry().clone(), authz, endpoint_host: endpoint_host.into(), rules: None, connectivity }), rules: None }
    }

    /// The tap to register with the broker (`Broker::add_tap`) for GetThingConnectivityData.
    pub fn connectivity(&self) -> Arc<connectivity::Connectivity> {
        self.inner.connectivity.clone()
    }
}

impl Service for Iot {
    fn models(&self) -> &'static [&'static str] {
        &["iot"]
    }

    fn call(&self, req: ApiRequest) -> BoxReply<'_> {
        if topic_rules::OPS.contains(&req.op) {
            return self.call_rules(req);
        }
        let inner = self.inner.clone();
        Box::pin(async move {
            let op = req.op;
            match tokio::task::spawn_blocking(move || inner.handle(&req)).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::error!(operation = op, error = %e, "registry handler failed");
                    Err(ApiError::internal("An internal error occurred."))
                }
            }
        })
    }
}

impl Inner {
    /// Runs the operation; one that lost a race with another node's write (the replica has
    /// caught up since) runs again.
    fn handle(&self, req: &ApiRequest) -> Reply {
        let mut tries = 0;
        loop {
            let reply = self.dispatch(req);
            match &reply {
                Err(e) if e.error_type == crate::error::CONFLICT && tries < crate::error::CONFLICT_RETRIES => tries += 1,
                _ => return reply,
            }
        }
    }

    fn dispatch(&self, req: &ApiRequest) -> Reply {
        match req.op {
            "CreateThing" => self.create_thing(req),
            "DescribeThing" => self.describe_thing(req),
            "GetThingConnectivityData" => self.get_thing_connectivity_data(req),
            "UpdateThing" => self.update_thing(req),
            "DeleteThing" => self.delete_thing(req),
            "ListThings" => self.list_things(req),
            "AttachThingPrincipal" => self.attach_thing_principal(req),
            "DetachThingPrincipal" => self.detach_thing_principal(req),
            "ListThingPrincipals" => self.list_thing_principals(req, false),
            "ListThingPrincipalsV2" => self.list_thing_principals(req, true),
            "ListPrincipalThings" => self.list_principal_things(req, false),
            "ListPrincipalThingsV2" => self.list_principal_things(req, true),
            "ListThingGroupsForThing" => self.list_thing_groups_for_thing(req),
            "CreateThingType" => self.create_thing_type(req),
            "DescribeThingType" => self.describe_thing_type(req),
            "ListThingTypes" => self.list_thing_types(req),
            "UpdateThingType" => self.update_thing_type(req),
            "DeprecateThingType" => self.deprecate_thing_type(req),
            "DeleteThingType" => self.delete_thing_type(req),
            "CreateThingGroup" => self.create_thing_group(req),
            "DescribeThingGroup" => self.describe_thing_group(req),
            "UpdateThingGroup" => self.update_thing_group(req),
            "DeleteThingGroup" => self.delete_thing_group(req),
            "ListThingGroups" => self.list_thing_groups(req),
            "AddThingToThingGroup" => self.add_thing_to_thing_group(req),
            "RemoveThingFromThingGroup" => self.remove_thing_from_thing_group(req),
            "UpdateThingGroupsForThing" => self.update_thing_groups_for_thing(req),
            "ListThingsInThingGroup" => self.list_things_in_thing_group(req),
            "CreateBillingGroup" => self.create_billing_group(req),
            "DescribeBillingGroup" => self.describe_billing_group(req),
            "UpdateBillingGroup" => self.update_billing_group(req),
            "DeleteBillingGroup" => self.delete_billing_group(req),
            "ListBillingGroups" => self.list_billing_groups(req),
            "AddThingToBillingGroup" => self.add_thing_to_billing_group(req),
            "RemoveThingFromBillingGroup" => self.remove_thing_from_billing_group(req),
            "ListThingsInBillingGroup" => self.list_things_in_billing_group(req),
            "TagResource" => self.tag_resource(req),
            "UntagResource" => self.untag_resource(req),
            "ListTagsForResource" => self.list_tags_for_resource(req),
            "DescribeEndpoint" => self.describe_endpoint(req),
            "UpdateEventConfigurations" => self.update_event_configurations(req),
            "DescribeEventConfigurations" => self.describe_event_configurations(),
            "CreateKeysAndCertificate" => self.create_keys_and_certificate(req),
            "CreateCertificateFromCsr" => self.create_certificate_from_csr(req),
            "RegisterCertificate" => self.register_certificate(req),
            "RegisterCertificateWithoutCA" => self.register_certificate_without_ca(req),
            "DescribeCertificate" => self.describe_certificate(req),
            "ListCertificates" => self.list_certificates(req, false),
            "ListCertificatesByCA" => self.list_certificates(req, true),
            "UpdateCertificate" => self.update_certificate(req),
            "DeleteCertificate" => self.delete_certificate(req),
            "GetRegistrationCode" => self.get_registration_code(),
            "DeleteRegistrationCode" => self.delete_registration_code(),
            "RegisterCACertificate" => self.register_ca_certificate(req),
            "DescribeCACertificate" => self.describe_ca_certificate(req),
            "ListCACertificates" => self.list_ca_certificates(req),
            "UpdateCACertificate" => self.update_ca_certificate(req),
            "DeleteCACertificate" => self.delete_ca_certificate(req),
            "CreatePolicy" => self.create_policy(req),
            "GetPolicy" => self.get_policy(req),
            "ListPolicies" => self.list_policies(req),
            "DeletePolicy" => self.delete_policy(req),
            "CreatePolicyVersion" => self.create_policy_version(req),
            "GetPolicyVersion" => self.get_policy_version(req),
            "ListPolicyVersions" => self.list_policy_versions(req),
            "SetDefaultPolicyVersion" => self.set_default_policy_version(req),
            "DeletePolicyVersion" => self.delete_policy_version(req),
            "AttachPolicy" => self.attach_policy(req, false),
            "DetachPolicy" => self.attach_policy(req, true),
            "AttachPrincipalPolicy" => self.principal_policy(req, false),
            "DetachPrincipalPolicy" => self.principal_policy(req, true),
            "ListAttachedPolicies" => self.list_attached_policies(req),
            "ListPrincipalPolicies" => self.list_principal_policies(req),
            "ListTargetsForPolicy" => self.list_targets_for_policy(req, false),
            "ListPolicyPrincipals" => self.list_targets_for_policy(req, true),
            "GetEffectivePolicies" => self.get_effective_policies(req),
            "TestAuthorization" => self.test_authorization(req),
            "CreateAuthorizer" => self.create_authorizer(req),
            "DescribeAuthorizer" => self.describe_authorizer(req),
            "ListAuthorizers" => self.list_authorizers(req),
            "UpdateAuthorizer" => self.update_authorizer(req),
            "DeleteAuthorizer" => self.delete_authorizer(req),
            "SetDefaultAuthorizer" => self.set_default_authorizer(req),
            "DescribeDefaultAuthorizer" => self.describe_default_authorizer(),
            "ClearDefaultAuthorizer" => self.clear_default_authorizer(),
            "TestInvokeAuthorizer" => self.test_invoke_authorizer(req),
            op => Err(ApiError::not_implemented("iot", op)),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::Invalid(m) => ApiError::invalid(m),
            RegistryError::NotFound(m) => ApiError::not_found(m),
            RegistryError::AlreadyExists { message, resource_id, resource_arn } => ApiError::already_exists(message, &resource_id, &resource_arn),
            RegistryError::VersionConflict(m) => ApiError::version_conflict(m),
            RegistryError::LimitExceeded(m) => ApiError::limit_exceeded(m),
            RegistryError::Store(e) => ApiError::from(e),
            e @ RegistryError::Corrupt { .. } => {
                tracing::error!(error = %e, "registry document cannot be read");
                ApiError::internal("An internal error occurred while reading the registry.")
            }
        }
    }
}

impl From<authz::AuthzError> for ApiError {
    fn from(e: authz::AuthzError) -> ApiError {
        match e {
            authz::AuthzError::Registry(e) => ApiError::from(e),
            authz::AuthzError::Store(e) => ApiError::from(e),
            authz::AuthzError::AlreadyExists { message, resource_id, resource_arn } => ApiError::already_exists(message, &resource_id, &resource_arn),
            e @ (authz::AuthzError::Corrupt { .. } | authz::AuthzError::Internal(_)) => {
                tracing::error!(error = %e, "certificate or policy operation failed");
                ApiError::internal("An internal error occurred.")
            }
            e => ApiError::new(e.aws_type(), e.to_string()),
        }
    }
}

/// The authorization denial counters for `/metrics`.
pub struct AuthzMetrics(pub Arc<authz::Authz>);

impl crate::MetricsSource for AuthzMetrics {
    fn render(&self, out: &mut String) {
        self.0.denials().render(out);
    }
}

/// The `maxResults` and `nextToken` of a list request: the key to continue after and the page
/// size (1 to 250; 250 when absent).
pub(crate) fn paging(req: &ApiRequest) -> Result<(Option<String>, usize), ApiError> {
    req.input().page("maxResults", "nextToken", 250)
}

/// Adds `nextToken` to a list response when more items follow the page.
pub(crate) fn with_token<T>(mut out: Value, page: &Page<T>) -> Value {
    if let Some(t) = page.token() {
        out["nextToken"] = Value::String(t);
    }
    out
}

/// A timestamp as the model types it: epoch seconds, a number.
pub(crate) fn secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The optional `expectedVersion` member.
pub(crate) fn expected_version(req: &ApiRequest) -> Result<Option<i64>, ApiError> {
    req.input().i64("expectedVersion")
}

/// `{"tags": [...]}` / TagList from a tag map.
pub(crate) fn tag_list(tags: &registry::Tags) -> Value {
    Value::Array(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect())
}

/// A successful response with no members.
pub(crate) fn done() -> Reply {
    ApiResponse::json(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use identity::sigv4::Verified;

    struct Fixture {
        dir: std::path::PathBuf,
        inner: Inner,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("ferrite-api-iot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let docs = Arc::new(store::Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
        let config = registry::RegistryConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            thing_type_delete_delay: std::time::Duration::from_secs(300),
        };
        let registry = Arc::new(Registry::open(docs.clone(), config, Arc::new(registry::NoEvents)).unwrap());
        let (pki, _) = identity::Pki::load_or_create(&dir).unwrap();
        let ac = authz::AuthzConfig { region: "us-east-1".into(), account_id: "123456789012".into() };
        let authz = Arc::new(authz::Authz::open(docs, ac, registry.clone(), Arc::new(pki), Default::default()).unwrap());
        Fixture { dir, inner: Inner { registry, authz, endpoint_host: "iot.example.com".into(), rules: None, connectivity: Default::default() } }
    }

    /// Binds a request through the iot model, as the HTTP layer does, and runs it.
    fn call(inner: &Inner, op: &'static str, labels: &[(&str, &str)], query: &[(&str, &str)], body: &str) -> Reply {
        let model = &awsmodel::generated::iot::SERVICE;
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let (labels, query) = (pairs(labels), pairs(query));
        let parts = awsmodel::bind::Parts { labels: &labels, query: &query, headers: &[], body: body.as_bytes(), fields: &[] };
        let members = awsmodel::bind::bind(model, model.operation(op).unwrap(), &parts).map_err(|e| ApiError::invalid(e.to_string()))?;
        let req = ApiRequest {
            model,
            members,
            op,
            params: labels.into_iter().collect(),
            body: Bytes::from(body.to_string()),
            caller: Verified { access_key: "AKIA".into(), region: "us-east-1".into(), service: "iot".into() },
            request_id: "r".into(),
        };
        inner.handle(&req)
    }

    /// An error with the status the iot model gives it, as the HTTP layer answers it.
    fn error_of(reply: Reply) -> ApiError {
        reply.unwrap_err().resolve(awsmodel::service("iot").unwrap())
    }

    fn json_of(reply: Reply) -> Value {
        match reply.unwrap().body {
            crate::Body::Json(v) => v,
            other => panic!("not JSON: {other:?}"),
        }
    }

    #[test]
    fn things_map_to_aws_shapes_and_errors() {
        let f = fixture("things");
        let created = json_of(call(&f.inner, "CreateThing", &[("thingName", "t1")], &[], r#"{"attributePayload":{"attributes":{"a":"1"}}}"#));
        assert_eq!(created["thingArn"], "arn:aws:iot:us-east-1:123456789012:thing/t1");
        let d = json_of(call(&f.inner, "DescribeThing", &[("thingName", "t1")], &[], ""));
        assert_eq!(d["defaultClientId"], "t1");
        assert_eq!(d["version"], 1);
        assert_eq!(d["thingId"], created["thingId"]);
        assert!(d.get("thingTypeName").is_none());
        let e = error_of(call(&f.inner, "CreateThing", &[("thingName", "t1")], &[], r#"{"attributePayload":{"attributes":{"a":"2"}}}"#));
        assert_eq!((e.status, e.error_type), (409, "ResourceAlreadyExistsException"));
        assert_eq!(e.body()["resourceArn"], created["thingArn"]);
        assert_eq!(e.body()["resourceId"], created["thingId"]);
        let e = error_of(call(&f.inner, "DescribeThing", &[("thingName", "nope")], &[], ""));
        assert_eq!((e.status, e.error_type), (404, "ResourceNotFoundException"));
        let e = error_of(call(&f.inner, "UpdateThing", &[("thingName", "t1")], &[], r#"{"expectedVersion":"one"}"#));
        assert_eq!(e.status, 400);
        assert!(e.message.contains("expectedVersion"), "{}", e.message);
        let e = error_of(call(&f.inner, "CreateThing", &[("thingName", "t2")], &[], r#"{"attributePayload":{"attributes":{"a":1}}}"#));
        assert!(e.message.contains("attributePayload.attributes"), "{}", e.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn authorizers_have_aws_shapes_and_a_missing_function_is_an_invalid_response() {
        let f = fixture("authorizers");
        let body = r#"{"authorizerFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:auth","signingDisabled":true}"#;
        let made = json_of(call(&f.inner, "CreateAuthorizer", &[("authorizerName", "a1")], &[], body));
        assert_eq!(made["authorizerArn"], "arn:aws:iot:us-east-1:123456789012:authorizer/a1");
        let d = json_of(call(&f.inner, "DescribeAuthorizer", &[("authorizerName", "a1")], &[], ""));
        assert_eq!((d["authorizerDescription"]["status"].as_str(), d["authorizerDescription"]["signingDisabled"].as_bool()), (Some("ACTIVE"), Some(true)));
        let e = error_of(call(&f.inner, "DeleteAuthorizer", &[("authorizerName", "a1")], &[], ""));
        assert_eq!((e.status, e.error_type), (409, "DeleteConflictException"));
        let e = error_of(call(&f.inner, "DescribeDefaultAuthorizer", &[], &[], ""));
        assert_eq!(e.error_type, "ResourceNotFoundException");
        // No functions wired in: the invocation fails inside the service.
        let e = error_of(tokio::task::block_in_place(|| call(&f.inner, "TestInvokeAuthorizer", &[("authorizerName", "a1")], &[], r#"{"token":"t"}"#)));
        assert_eq!(e.status, 500);
        let list = json_of(call(&f.inner, "ListAuthorizers", &[], &[], ""));
        assert_eq!(list["authorizers"][0]["authorizerName"], "a1");
    }

    #[test]
    fn certificate_and_policy_errors_have_aws_types_and_statuses() {
        let f = fixture("authz");
        let e = error_of(call(&f.inner, "CreatePolicy", &[("policyName", "p")], &[], r#"{"policyDocument":"nope"}"#));
        assert_eq!((e.status, e.error_type), (400, "MalformedPolicyException"));
        let c = json_of(call(&f.inner, "CreateKeysAndCertificate", &[], &[("setAsActive", "true")], ""));
        let id = c["certificateId"].as_str().unwrap();
        assert!(c["keyPair"]["PrivateKey"].as_str().unwrap().contains("RSA PRIVATE KEY"));
        let e = error_of(call(&f.inner, "DeleteCertificate", &[("certificateId", id)], &[], ""));
        assert_eq!((e.status, e.error_type), (406, "CertificateStateException"));
        let listed = json_of(call(&f.inner, "ListCertificates", &[], &[("pageSize", "1")], ""));
        assert_eq!(listed["certificates"][0]["status"], "ACTIVE");
        let e = error_of(call(&f.inner, "AttachPolicy", &[("policyName", "p")], &[], &format!(r#"{{"target":"{}"}}"#, c["certificateArn"].as_str().unwrap())));
        assert_eq!((e.status, e.error_type), (404, "ResourceNotFoundException"));
    }

    #[test]
    fn lists_page_with_opaque_tokens() {
        let f = fixture("paging");
        for i in 0..5 {
            call(&f.inner, "CreateThing", &[("thingName", &format!("t{i}"))], &[], "").unwrap();
        }
        let first = json_of(call(&f.inner, "ListThings", &[], &[("maxResults", "3")], ""));
        assert_eq!(first["things"].as_array().unwrap().len(), 3);
        let token = first["nextToken"].as_str().unwrap().to_string();
        let rest = json_of(call(&f.inner, "ListThings", &[], &[("nextToken", &token)], ""));
        let names: Vec<&str> = rest["things"].as_array().unwrap().iter().map(|t| t["thingName"].as_str().unwrap()).collect();
        assert_eq!(names, ["t3", "t4"]);
        assert!(rest.get("nextToken").is_none());
        let e = error_of(call(&f.inner, "ListThings", &[], &[("maxResults", "0")], ""));
        assert_eq!(e.error_type, "InvalidRequestException");
    }

    #[test]
    fn timestamps_are_epoch_seconds_and_endpoint_is_the_configured_host() {
        let f = fixture("misc");
        let d = json_of(call(&f.inner, "DescribeEventConfigurations", &[], &[], ""));
        let created = d["creationDate"].as_f64().unwrap();
        assert!(created > 1.6e9 && created < 1e11, "{created}");
        assert_eq!(d["eventConfigurations"]["THING"]["Enabled"], false);
        let e = json_of(call(&f.inner, "DescribeEndpoint", &[], &[("endpointType", "iot:Data-ATS")], ""));
        assert_eq!(e["endpointAddress"], "iot.example.com");
        let e = error_of(call(&f.inner, "DescribeEndpoint", &[], &[("endpointType", "iot:Other")], ""));
        assert_eq!(e.error_type, "InvalidRequestException");
    }
}
