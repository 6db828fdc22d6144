//! Custom authorizers (AWS IoT's CreateAuthorizer family): an authorizer names a Ferrite function
//! (`arn:aws:lambda:{region}:{account}:function:{name}`) that decides a connection presenting no
//! certificate, optionally with signed tokens (`tokenSigningPublicKeys`, unless
//! `signingDisabled`). Stored as documents of kind `authorizer`; the default authorizer's name is
//! the `authz-setting` `default-authorizer`. The invocation itself is in [`crate::custom`].

use crate::error::{AuthzError, Result, invalid, not_found};
use crate::state::Change;
use crate::{Authz, Page, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Token signing keys an authorizer may have (AWS allows two, for rotation).
pub const MAX_SIGNING_KEYS: usize = 2;

/// A custom authorizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorizer {
    pub name: String,
    pub function_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_key_name: Option<String>,
    /// Key name → PEM public key.
    #[serde(default)]
    pub token_signing_public_keys: BTreeMap<String, String>,
    pub active: bool,
    #[serde(default)]
    pub signing_disabled: bool,
    #[serde(default)]
    pub enable_caching_for_http: bool,
    pub created_ms: i64,
    pub modified_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Authorizer {
    /// `ACTIVE` or `INACTIVE`.
    pub fn status(&self) -> &'static str {
        if self.active { "ACTIVE" } else { "INACTIVE" }
    }
}

/// What CreateAuthorizer carries.
#[derive(Debug, Clone, Default)]
pub struct NewAuthorizer {
    pub name: String,
    pub function_arn: String,
    pub token_key_name: Option<String>,
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    pub status: Option<String>,
    pub signing_disabled: Option<bool>,
    pub enable_caching_for_http: Option<bool>,
    pub tags: Vec<(String, String)>,
}

/// What UpdateAuthorizer carries (absent: unchanged).
#[derive(Debug, Clone, Default)]
pub struct AuthorizerUpdate {
    pub name: String,
    pub function_arn: Option<String>,
    pub token_key_name: Option<String>,
    pub token_signing_public_keys: Option<BTreeMap<String, String>>,
    pub status: Option<String>,
    pub enable_caching_for_http: Option<bool>,
}

fn validate_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_alphanumeric() || "_=,@-".contains(c);
    if name.is_empty() || name.chars().count() > 128 || !name.chars().all(ok) {
        return invalid(format!("authorizerName {name:?} must be 1 to 128 characters matching [\\w=,@-]+"));
    }
    Ok(())
}

fn parse_status(s: Option<&str>) -> Result<Option<bool>> {
    match s {
        None => Ok(None),
        Some("ACTIVE") => Ok(Some(true)),
        Some("INACTIVE") => Ok(Some(false)),
        Some(other) => invalid(format!("status {other:?} must be ACTIVE or INACTIVE")),
    }
}

/// Checks what signing needs: a token key name and one or two keys (each a PEM public key).
fn validate(a: &Authorizer) -> Result<()> {
    functions::resolve_name(&a.function_arn).map_err(|e| AuthzError::Invalid(format!("authorizerFunctionArn: {e}")))?;
    if let Some(k) = &a.token_key_name
        && (k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return invalid(format!("tokenKeyName {k:?} must be 1 to 128 letters, digits, hyphens or underscores"));
    }
    if a.token_signing_public_keys.len() > MAX_SIGNING_KEYS {
        return Err(AuthzError::LimitExceeded(format!("an authorizer has at most {MAX_SIGNING_KEYS} token signing keys")));
    }
    if !a.signing_disabled {
        if a.token_key_name.is_none() {
            return invalid("tokenKeyName is required when signing is enabled");
        }
        if a.token_signing_public_keys.is_empty() {
            return invalid("tokenSigningPublicKeys is required when signing is enabled");
        }
    }
    for (name, pem) in &a.token_signing_public_keys {
        if !pem.contains("-----BEGIN") {
            return invalid(format!("token signing key {name:?} is not a PEM public key"));
        }
    }
    Ok(())
}

impl Authz {
    /// `arn:aws:iot:{region}:{account}:authorizer/{name}`.
    pub fn authorizer_arn(&self, name: &str) -> String {
        self.arn("authorizer", name)
    }

    /// CreateAuthorizer.
    pub fn create_authorizer(&self, new: NewAuthorizer) -> Result<Authorizer> {
        validate_name(&new.name)?;
        crate::attach::check_tags(&new.tags)?;
        let now = now_ms();
        let a = Authorizer {
            name: new.name,
            function_arn: new.function_arn,
            token_key_name: new.token_key_name,
            token_signing_public_keys: new.token_signing_public_keys.unwrap_or_default(),
            active: parse_status(new.status.as_deref())?.unwrap_or(true),
            signing_disabled: new.signing_disabled.unwrap_or(false),
            enable_caching_for_http: new.enable_caching_for_http.unwrap_or(false),
            created_ms: now,
            modified_ms: now,
            tags: new.tags.into_iter().collect(),
        };
        validate(&a)?;
        let mut st = self.lock()?;
        if st.authorizers.contains_key(&a.name) {
            let arn = self.authorizer_arn(&a.name);
            return Err(AuthzError::AlreadyExists { message: format!("Authorizer {} already exists", a.name), resource_id: a.name.clone(), resource_arn: arn });
        }
        self.commit(&mut st, vec![Change::Authorizer(a.clone())])?;
        Ok(a)
    }

    /// DescribeAuthorizer.
    pub fn describe_authorizer(&self, name: &str) -> Result<Authorizer> {
        self.read().authorizers.get(name).cloned().ok_or_else(|| not_found(format!("Authorizer {name} does not exist")))
    }

    /// ListAuthorizers, optionally only those of one status.
    pub fn list_authorizers(&self, status: Option<&str>, ascending: bool, after: Option<&str>, limit: usize) -> Result<Page<Authorizer>> {
        let want = parse_status(status)?;
        let items: Vec<Authorizer> = self.read().authorizers.values().filter(|a| want.is_none_or(|w| a.active == w)).cloned().collect();
        Ok(Page::sorted(items, |a| a.name.clone(), ascending, after, limit))
    }

    /// UpdateAuthorizer.
    pub fn update_authorizer(&self, u: AuthorizerUpdate) -> Result<Authorizer> {
        let mut st = self.lock()?;
        let mut a = st.authorizers.get(&u.name).cloned().ok_or_else(|| not_found(format!("Authorizer {} does not exist", u.name)))?;
        if let Some(f) = u.function_arn {
            a.function_arn = f;
        }
        if let Some(k) = u.token_key_name {
            a.token_key_name = Some(k);
        }
        if let Some(keys) = u.token_signing_public_keys {
            a.token_signing_public_keys = keys;
        }
        if let Some(active) = parse_status(u.status.as_deref())? {
            a.active = active;
        }
        if let Some(c) = u.enable_caching_for_http {
            a.enable_caching_for_http = c;
        }
        a.modified_ms = now_ms();
        validate(&a)?;
        self.commit(&mut st, vec![Change::Authorizer(a.clone())])?;
        Ok(a)
    }

    /// DeleteAuthorizer: only an INACTIVE authorizer that is not the default may be deleted.
    pub fn delete_authorizer(&self, name: &str) -> Result<()> {
        let mut st = self.lock()?;
        let a = st.authorizers.get(name).ok_or_else(|| not_found(format!("Authorizer {name} does not exist")))?;
        if a.active {
            return Err(AuthzError::DeleteConflict(format!("Authorizer {name} is ACTIVE: set it INACTIVE before deleting it")));
        }
        if st.default_authorizer.as_deref() == Some(name) {
            return Err(AuthzError::DeleteConflict(format!("Authorizer {name} is the default authorizer: clear it first")));
        }
        self.commit(&mut st, vec![Change::DropAuthorizer(name.to_string())])
    }

    /// SetDefaultAuthorizer.
    pub fn set_default_authorizer(&self, name: &str) -> Result<Authorizer> {
        let mut st = self.lock()?;
        let a = st.authorizers.get(name).cloned().ok_or_else(|| not_found(format!("Authorizer {name} does not exist")))?;
        self.commit(&mut st, vec![Change::DefaultAuthorizer(Some(name.to_string()))])?;
        Ok(a)
    }

    /// DescribeDefaultAuthorizer.
    pub fn describe_default_authorizer(&self) -> Result<Authorizer> {
        let st = self.read();
        st.default_authorizer.as_ref().and_then(|n| st.authorizers.get(n)).cloned().ok_or_else(|| not_found("No default authorizer is set"))
    }

    /// ClearDefaultAuthorizer.
    pub fn clear_default_authorizer(&self) -> Result<()> {
        let mut st = self.lock()?;
        if st.default_authorizer.is_none() {
            return Err(not_found("No default authorizer is set"));
        }
        self.commit(&mut st, vec![Change::DefaultAuthorizer(None)])
    }

    /// The authorizer a connection uses: the named one, else the default; `Err` when it is
    /// named but missing or INACTIVE, `Ok(None)` when none applies.
    pub(crate) fn authorizer_for(&self, named: Option<&str>) -> std::result::Result<Option<Authorizer>, String> {
        let st = self.read();
        match named {
            Some(n) => match st.authorizers.get(n) {
                Some(a) if a.active => Ok(Some(a.clone())),
                Some(_) => Err(format!("authorizer {n} is INACTIVE")),
                None => Err(format!("authorizer {n} does not exist")),
            },
            None => Ok(st.default_authorizer.as_ref().and_then(|n| st.authorizers.get(n)).filter(|a| a.active).cloned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixture;

    fn new(name: &str) -> NewAuthorizer {
        NewAuthorizer { name: name.into(), function_arn: "arn:aws:lambda:us-east-1:123456789012:function:auth".into(), signing_disabled: Some(true), ..Default::default() }
    }

    #[test]
    fn authorizers_crud_default_and_conflicts() {
        let f = fixture();
        let a = &f.authz;
        a.create_authorizer(new("one")).unwrap();
        assert!(matches!(a.create_authorizer(new("one")), Err(AuthzError::AlreadyExists { .. })));
        assert!(matches!(a.create_authorizer(new("bad name")), Err(AuthzError::Invalid(_))));
        let mut signed = new("signed");
        signed.signing_disabled = Some(false);
        assert!(matches!(a.create_authorizer(signed), Err(AuthzError::Invalid(_))));
        a.create_authorizer(NewAuthorizer { status: Some("INACTIVE".into()), ..new("two") }).unwrap();
        assert_eq!(a.list_authorizers(Some("ACTIVE"), true, None, 10).unwrap().items.len(), 1);
        assert_eq!(a.list_authorizers(None, true, None, 10).unwrap().items.len(), 2);
        assert!(matches!(a.describe_default_authorizer(), Err(AuthzError::NotFound(_))));
        a.set_default_authorizer("one").unwrap();
        assert_eq!(a.authorizer_for(None).unwrap().map(|x| x.name), Some("one".into()));
        assert!(a.authorizer_for(Some("two")).is_err());
        assert!(matches!(a.delete_authorizer("one"), Err(AuthzError::DeleteConflict(_))));
        a.update_authorizer(AuthorizerUpdate { name: "one".into(), status: Some("INACTIVE".into()), ..Default::default() }).unwrap();
        assert!(matches!(a.delete_authorizer("one"), Err(AuthzError::DeleteConflict(_))));
        let reopened = f.reopen();
        assert_eq!(reopened.describe_default_authorizer().unwrap().name, "one");
        a.clear_default_authorizer().unwrap();
        a.delete_authorizer("one").unwrap();
        assert!(matches!(a.describe_authorizer("one"), Err(AuthzError::NotFound(_))));
    }
}
