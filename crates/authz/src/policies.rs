//! Policies and their versions: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! CreatePolicyVersion (at most five), GetPolicyVersion, ListPolicyVersions,
//! SetDefaultPolicyVersion and DeletePolicyVersion. Every document is parsed by the AWS IoT
//! policy language parser first (MalformedPolicyException).

use crate::error::{AuthzError, Result, invalid, not_found};
use crate::state::{Change, Policy, PolicyVersion};
use crate::{Authz, Page, now_ms, random_hex};
use std::collections::BTreeMap;

/// A policy has at most this many versions (AWS: 5).
pub const MAX_VERSIONS: usize = 5;
/// The model's largest policy document.
const MAX_DOCUMENT: usize = 404_600;

/// Checks a policy name (`[\w+=,.@-]+`, 1 to 128 characters).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len()) && name.chars().all(|c| c.is_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return invalid(format!("policyName {name:?} must be 1 to 128 characters of letters, digits and _+=,.@-"));
    }
    Ok(())
}

fn check_document(doc: &str) -> Result<()> {
    if doc.len() > MAX_DOCUMENT {
        return invalid(format!("policyDocument is longer than {MAX_DOCUMENT} characters"));
    }
    identity::policy::parse(doc).map(|_| ()).map_err(|e| AuthzError::MalformedPolicy(e.0))
}

fn version_id(id: &str) -> Result<u64> {
    id.parse::<u64>().map_err(|_| AuthzError::Invalid(format!("policyVersionId must be a number, not {id:?}")))
}

impl Authz {
    fn policy_not_found(name: &str) -> AuthzError {
        not_found(format!("Policy {name} does not exist."))
    }

    /// CreatePolicy: version 1, the default.
    pub fn create_policy(&self, name: &str, document: &str, tags: &[(String, String)]) -> Result<Policy> {
        check_name(name)?;
        check_document(document)?;
        crate::attach::check_tags(tags)?;
        let mut st = self.lock()?;
        if st.policies.contains_key(name) {
            return Err(AuthzError::AlreadyExists {
                message: format!("Policy cannot be created - name already exists (name={name})"),
                resource_id: name.to_string(),
                resource_arn: self.policy_arn(name),
            });
        }
        let now = now_ms();
        let p = Policy {
            name: name.to_string(),
            versions: BTreeMap::from([(1, PolicyVersion { document: document.to_string(), created_ms: now })]),
            default_version: 1,
            next_version: 2,
            created_ms: now,
            modified_ms: now,
            generation_id: random_hex(32),
            tags: tags.iter().cloned().collect(),
        };
        self.commit(&mut st, vec![Change::Policy(p.clone())])?;
        Ok(p)
    }

    /// GetPolicy.
    pub fn get_policy(&self, name: &str) -> Result<Policy> {
        check_name(name)?;
        self.read().policies.get(name).cloned().ok_or_else(|| Self::policy_not_found(name))
    }

    /// ListPolicies, in creation order (ascending or not).
    pub fn list_policies(&self, ascending: bool, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        let items: Vec<(i64, String)> = self.read().policies.values().map(|p| (p.created_ms, p.name.clone())).collect();
        let p = Page::sorted(items, |(t, n)| format!("{t:020}/{n}"), ascending, after, limit);
        Ok(Page { items: p.items.into_iter().map(|(_, n)| n).collect(), next: p.next })
    }

    /// DeletePolicy: not while attached, nor while it has versions other than the default.
    pub fn delete_policy(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let mut st = self.lock()?;
        let p = st.policies.get(name).ok_or_else(|| Self::policy_not_found(name))?;
        if st.by_policy.get(name).is_some_and(|t| !t.is_empty()) {
            return Err(AuthzError::DeleteConflict(format!("The policy cannot be deleted as the policy is attached to one or more principals (name={name})")));
        }
        if p.versions.len() > 1 {
            return Err(AuthzError::DeleteConflict(format!(
                "Cannot delete the policy because it has one or more policy versions attached to it (name={name})"
            )));
        }
        self.commit(&mut st, vec![Change::DropPolicy(name.to_string())])
    }

    /// CreatePolicyVersion: a sixth version is refused (VersionsLimitExceededException).
    pub fn create_policy_version(&self, name: &str, document: &str, set_as_default: bool) -> Result<(Policy, u64)> {
        check_name(name)?;
        check_document(document)?;
        let mut st = self.lock()?;
        let mut p = st.policies.get(name).cloned().ok_or_else(|| Self::policy_not_found(name))?;
        if p.versions.len() >= MAX_VERSIONS {
            return Err(AuthzError::VersionsLimitExceeded(format!("The policy {name} already has the maximum number of versions ({MAX_VERSIONS})")));
        }
        let id = p.next_version;
        let now = now_ms();
        p.versions.insert(id, PolicyVersion { document: document.to_string(), created_ms: now });
        p.next_version += 1;
        if set_as_default {
            p.default_version = id;
        }
        p.modified_ms = now;
        p.generation_id = random_hex(32);
        self.commit(&mut st, vec![Change::Policy(p.clone())])?;
        Ok((p, id))
    }

    /// GetPolicyVersion: the policy and the version asked for.
    pub fn get_policy_version(&self, name: &str, version: &str) -> Result<(Policy, u64)> {
        check_name(name)?;
        let id = version_id(version)?;
        let p = self.get_policy(name)?;
        if !p.versions.contains_key(&id) {
            return Err(not_found(format!("Policy {name} has no version {id}.")));
        }
        Ok((p, id))
    }

    /// SetDefaultPolicyVersion.
    pub fn set_default_policy_version(&self, name: &str, version: &str) -> Result<()> {
        check_name(name)?;
        let id = version_id(version)?;
        let mut st = self.lock()?;
        let mut p = st.policies.get(name).cloned().ok_or_else(|| Self::policy_not_found(name))?;
        if !p.versions.contains_key(&id) {
            return Err(not_found(format!("Policy {name} has no version {id}.")));
        }
        if p.default_version == id {
            return Ok(());
        }
        p.default_version = id;
        p.modified_ms = now_ms();
        p.generation_id = random_hex(32);
        self.commit(&mut st, vec![Change::Policy(p)])
    }

    /// DeletePolicyVersion: not the default one (delete the policy instead).
    pub fn delete_policy_version(&self, name: &str, version: &str) -> Result<()> {
        check_name(name)?;
        let id = version_id(version)?;
        let mut st = self.lock()?;
        let mut p = st.policies.get(name).cloned().ok_or_else(|| Self::policy_not_found(name))?;
        if !p.versions.contains_key(&id) {
            return Err(not_found(format!("Policy {name} has no version {id}.")));
        }
        if p.default_version == id {
            return Err(AuthzError::DeleteConflict("Cannot delete the default version of a policy; delete the policy instead.".into()));
        }
        p.versions.remove(&id);
        p.modified_ms = now_ms();
        self.commit(&mut st, vec![Change::Policy(p)])
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

    #[test]
    fn versions_are_limited_to_five_and_the_default_is_protected() {
        let f = fixture();
        let a = &f.authz;
        let p = a.create_policy("p1", DOC, &[]).unwrap();
        assert_eq!((p.default_version, p.document()), (1, DOC));
        assert!(matches!(a.create_policy("p1", DOC, &[]), Err(AuthzError::AlreadyExists { .. })));
        assert!(matches!(a.create_policy("p2", "{nope", &[]), Err(AuthzError::MalformedPolicy(_))));
        assert!(matches!(a.create_policy("bad name", DOC, &[]), Err(AuthzError::Invalid(_))));
        for i in 2..=5 {
            let (p, id) = a.create_policy_version("p1", DOC, i == 3).unwrap();
            assert_eq!(id, i);
            assert_eq!(p.default_version, if i >= 3 { 3 } else { 1 });
        }
        assert!(matches!(a.create_policy_version("p1", DOC, false), Err(AuthzError::VersionsLimitExceeded(_))));
        assert!(matches!(a.delete_policy_version("p1", "3"), Err(AuthzError::DeleteConflict(_))));
        a.delete_policy_version("p1", "5").unwrap();
        // Ids are never reused.
        assert_eq!(a.create_policy_version("p1", DOC, false).unwrap().1, 6);
        a.set_default_policy_version("p1", "6").unwrap();
        assert!(matches!(a.set_default_policy_version("p1", "5"), Err(AuthzError::NotFound(_))));
        assert!(matches!(a.get_policy_version("p1", "x"), Err(AuthzError::Invalid(_))));
        assert!(matches!(a.delete_policy("p1"), Err(AuthzError::DeleteConflict(_))));
        for v in ["1", "2", "3", "4"] {
            a.delete_policy_version("p1", v).unwrap();
        }
        assert_eq!(f.reopen().get_policy("p1").unwrap().default_version, 6);
        a.delete_policy("p1").unwrap();
        assert!(matches!(a.get_policy("p1"), Err(AuthzError::NotFound(_))));
    }
}
