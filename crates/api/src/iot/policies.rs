//! Policies over HTTP: Create/Get/List/DeletePolicy, the policy versions, Attach/DetachPolicy
//! (and the deprecated principal forms), ListAttachedPolicies, ListTargetsForPolicy,
//! GetEffectivePolicies and TestAuthorization.

use super::certificates::{marker_paging, with_marker};
use super::{Inner, done, secs};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use authz::{AuthInfo, AuthResult, Policy};
use serde_json::{Value, json};


impl Inner {
    fn policy_ref(&self, name: &str) -> Value {
        json!({ "policyName": name, "policyArn": self.authz.policy_arn(name) })
    }

    fn policy_list(&self, names: &[String]) -> Value {
        Value::Array(names.iter().map(|n| self.policy_ref(n)).collect())
    }

    pub(super) fn create_policy(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let name = req.input().required("policyName")?;
        let p = self.authz.create_policy(name, &body.required("policyDocument")?.to_string(), &body.tags("tags")?)?;
        ApiResponse::json(json!({
            "policyName": p.name,
            "policyArn": self.authz.policy_arn(&p.name),
            "policyDocument": p.document(),
            "policyVersionId": p.default_version.to_string(),
        }))
    }

    pub(super) fn get_policy(&self, req: &ApiRequest) -> Reply {
        let p = self.authz.get_policy(req.input().required("policyName")?)?;
        ApiResponse::json(json!({
            "policyName": p.name,
            "policyArn": self.authz.policy_arn(&p.name),
            "policyDocument": p.document(),
            "defaultVersionId": p.default_version.to_string(),
            "creationDate": secs(p.created_ms),
            "lastModifiedDate": secs(p.modified_ms),
            "generationId": p.generation_id,
        }))
    }

    pub(super) fn list_policies(&self, req: &ApiRequest) -> Reply {
        let (after, size, ascending) = marker_paging(req)?;
        let page = self.authz.list_policies(ascending, after.as_deref(), size)?;
        ApiResponse::json(with_marker(json!({ "policies": self.policy_list(&page.items) }), &page))
    }

    pub(super) fn delete_policy(&self, req: &ApiRequest) -> Reply {
        self.authz.delete_policy(req.input().required("policyName")?)?;
        done()
    }

    pub(super) fn create_policy_version(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let (p, id) =
            self.authz.create_policy_version(req.input().required("policyName")?, &body.required("policyDocument")?.to_string(), req.input().bool("setAsDefault")?)?;
        ApiResponse::json(json!({
            "policyArn": self.authz.policy_arn(&p.name),
            "policyDocument": p.versions.get(&id).map(|v| v.document.as_str()),
            "policyVersionId": id.to_string(),
            "isDefaultVersion": p.default_version == id,
        }))
    }

    pub(super) fn get_policy_version(&self, req: &ApiRequest) -> Reply {
        let (p, id) = self.authz.get_policy_version(req.input().required("policyName")?, req.input().required("policyVersionId")?)?;
        let v = p.versions.get(&id).ok_or_else(|| ApiError::not_found("no such policy version"))?;
        ApiResponse::json(json!({
            "policyArn": self.authz.policy_arn(&p.name),
            "policyName": p.name,
            "policyDocument": v.document,
            "policyVersionId": id.to_string(),
            "isDefaultVersion": p.default_version == id,
            "creationDate": secs(v.created_ms),
            "lastModifiedDate": secs(v.created_ms),
            "generationId": p.generation_id,
        }))
    }

    pub(super) fn list_policy_versions(&self, req: &ApiRequest) -> Reply {
        let p: Policy = self.authz.get_policy(req.input().required("policyName")?)?;
        let versions: Vec<Value> = p
            .versions
            .iter()
            .rev()
            .map(|(id, v)| json!({ "versionId": id.to_string(), "isDefaultVersion": *id == p.default_version, "createDate": secs(v.created_ms) }))
            .collect();
        ApiResponse::json(json!({ "policyVersions": versions }))
    }

    pub(super) fn set_default_policy_version(&self, req: &ApiRequest) -> Reply {
        self.authz.set_default_policy_version(req.input().required("policyName")?, req.input().required("policyVersionId")?)?;
        done()
    }

    pub(super) fn delete_policy_version(&self, req: &ApiRequest) -> Reply {
        self.authz.delete_policy_version(req.input().required("policyName")?, req.input().required("policyVersionId")?)?;
        done()
    }

    pub(super) fn attach_policy(&self, req: &ApiRequest, detach: bool) -> Reply {
        let body = req.input();
        let target = body.required("target")?.to_string();
        let name = req.input().required("policyName")?;
        if detach {
            self.authz.detach_policy(name, &target)?
        } else {
            self.authz.attach_policy(name, &target)?
        }
        done()
    }

    /// AttachPrincipalPolicy / DetachPrincipalPolicy (deprecated): the principal in a header.
    pub(super) fn principal_policy(&self, req: &ApiRequest, detach: bool) -> Reply {
        let principal = req.input().required("principal")?;
        let name = req.input().required("policyName")?;
        if detach {
            // The deprecated form answers 404 for what is not attached.
            let attached = self.authz.list_attached_policies(principal, false, None, 250)?;
            if !attached.items.iter().any(|n| n == name) {
                return Err(ApiError::not_found(format!("Policy {name} is not attached to {principal}.")));
            }
            self.authz.detach_policy(name, principal)?;
        } else {
            self.authz.attach_policy(name, principal)?;
        }
        done()
    }

    pub(super) fn list_attached_policies(&self, req: &ApiRequest) -> Reply {
        let (after, size, _) = marker_paging(req)?;
        let page = self.authz.list_attached_policies(req.input().required("target")?, req.input().bool("recursive")?, after.as_deref(), size)?;
        ApiResponse::json(with_marker(json!({ "policies": self.policy_list(&page.items) }), &page))
    }

    pub(super) fn list_principal_policies(&self, req: &ApiRequest) -> Reply {
        let principal = req.input().required("principal")?;
        let (after, size, _) = marker_paging(req)?;
        let page = self.authz.list_attached_policies(principal, false, after.as_deref(), size)?;
        ApiResponse::json(with_marker(json!({ "policies": self.policy_list(&page.items) }), &page))
    }

    pub(super) fn list_targets_for_policy(&self, req: &ApiRequest, deprecated: bool) -> Reply {
        let (after, size, _) = marker_paging(req)?;
        let name = if deprecated {
            req.input().required("policyName")?
        } else {
            req.input().required("policyName")?
        };
        let page = self.authz.list_targets_for_policy(name, after.as_deref(), size)?;
        let key = if deprecated { "principals" } else { "targets" };
        ApiResponse::json(with_marker(json!({ key: page.items }), &page))
    }

    pub(super) fn get_effective_policies(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        if body.str("cognitoIdentityPoolId")?.is_some() {
            return Err(ApiError::invalid("Amazon Cognito identities are not supported by Ferrite"));
        }
        let policies = self.authz.effective_policies(body.str("principal")?.as_deref(), req.input().text("thingName")?)?;
        let items: Vec<Value> = policies.iter().map(|p| json!({ "policyName": p.name, "policyArn": p.arn, "policyDocument": p.document })).collect();
        ApiResponse::json(json!({ "effectivePolicies": items }))
    }

    pub(super) fn test_authorization(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        if body.str("cognitoIdentityPoolId")?.is_some() {
            return Err(ApiError::invalid("Amazon Cognito identities are not supported by Ferrite"));
        }
        let infos = body.objs("authInfos")?.ok_or_else(|| ApiError::invalid("authInfos is required"))?;
        let infos = infos
            .iter()
            .map(|i| {
                let resources = i.strs("resources")?.ok_or_else(|| ApiError::invalid("authInfos.member.resources is required"))?;
                Ok(AuthInfo { action_type: i.str("actionType")?.unwrap_or_default(), resources })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let add = body.strs("policyNamesToAdd")?.unwrap_or_default();
        let skip = body.strs("policyNamesToSkip")?.unwrap_or_default();
        let results = self.authz.test_authorization(body.str("principal")?.as_deref(), req.input().text("clientId")?, infos, &add, &skip)?;
        let items: Vec<Value> = results.iter().map(|r| self.auth_result(r)).collect();
        ApiResponse::json(json!({ "authResults": items }))
    }

    fn auth_result(&self, r: &AuthResult) -> Value {
        json!({
            "authInfo": { "actionType": r.info.action_type, "resources": r.info.resources },
            "allowed": { "policies": self.policy_list(&r.allowed) },
            "denied": {
                "implicitDeny": { "policies": self.policy_list(&r.implicit_deny) },
                "explicitDeny": { "policies": self.policy_list(&r.explicit_deny) },
            },
            "authDecision": r.decision,
            "missingContextValues": r.missing,
        })
    }
}
