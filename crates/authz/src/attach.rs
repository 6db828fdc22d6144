//! Policy attachments and what they add up to: AttachPolicy / DetachPolicy on certificates and
//! thing groups (and the deprecated principal forms), ListAttachedPolicies (recursive: a thing
//! group's ancestors too), ListTargetsForPolicy, GetEffectivePolicies (a certificate's policies
//! plus those of the thing's groups up the hierarchy) and TestAuthorization.

use crate::error::{AuthzError, Result, invalid, not_found};
use crate::state::{Change, State};
use crate::{Authz, Page};
use identity::policy::{Decision, Policy as Parsed, Request, evaluate};
use registry::ResourceKind;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// At most this many policies per target (AWS: 10).
pub const MAX_POLICIES_PER_TARGET: usize = 10;

/// A policy target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A certificate, by id.
    Cert(String),
    /// A static thing group, by name.
    ThingGroup(String),
}

/// A policy in effect: name, ARN and default document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePolicy {
    pub name: String,
    pub arn: String,
    pub document: String,
}

/// One TestAuthorization question: an action type and the resource ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    /// `PUBLISH`, `SUBSCRIBE`, `RECEIVE` or `CONNECT`.
    pub action_type: String,
    pub resources: Vec<String>,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResult {
    pub info: AuthInfo,
    /// Policies that allowed it.
    pub allowed: Vec<String>,
    /// Policies that denied it explicitly.
    pub explicit_deny: Vec<String>,
    /// Policies evaluated when nothing allowed or denied it.
    pub implicit_deny: Vec<String>,
    /// `ALLOWED`, `EXPLICIT_DENY` or `IMPLICIT_DENY`.
    pub decision: &'static str,
    /// Policy variables the question did not give a value for.
    pub missing: Vec<String>,
}

/// Checks tags given at creation (keys, values, count).
pub(crate) fn check_tags(tags: &[(String, String)]) -> Result<()> {
    awscore::tags::initial(tags)?;
    Ok(())
}

impl Authz {
    /// Reads a target ARN: a registered certificate or an existing thing group.
    pub fn parse_target(&self, target: &str) -> Result<Target> {
        let cert_prefix = format!("{}cert/", self.resource_prefix());
        if let Some(id) = target.strip_prefix(&cert_prefix) {
            if !self.read().certs.contains_key(id) {
                return Err(not_found(format!("Certificate {id} does not exist.")));
            }
            return Ok(Target::Cert(id.to_string()));
        }
        match self.registry.parse_arn(target) {
            Some((ResourceKind::ThingGroup, name)) => {
                self.registry.describe_thing_group(&name).map_err(|_| not_found(format!("Thing group {name} does not exist.")))?;
                Ok(Target::ThingGroup(name))
            }
            _ => invalid(format!("target {target:?} is not a certificate ARN or a thing group ARN of this account and region")),
        }
    }

    /// AttachPolicy (attaching again is fine).
    pub fn attach_policy(&self, name: &str, target: &str) -> Result<()> {
        crate::policies::check_name(name)?;
        let parsed = self.parse_target(target)?;
        let mut st = self.lock()?;
        // Again under the writer: a group deleted since had its attachments forgotten already
        // (a deletion from now on waits for this writer, then forgets this one too).
        if let Target::ThingGroup(group) = &parsed
            && self.registry.describe_thing_group(group).is_err()
        {
            return Err(not_found(format!("Thing group {group} does not exist.")));
        }
        if !st.policies.contains_key(name) {
            return Err(not_found(format!("Policy {name} does not exist.")));
        }
        let mut set = st.targets.get(target).cloned().unwrap_or_default();
        if set.contains(name) {
            return Ok(());
        }
        if set.len() >= MAX_POLICIES_PER_TARGET {
            return Err(AuthzError::LimitExceeded(format!("At most {MAX_POLICIES_PER_TARGET} policies can be attached to {target}.")));
        }
        set.insert(name.to_string());
        self.commit(&mut st, vec![Change::Target(target.to_string(), set)])
    }

    /// DetachPolicy (detaching what is not attached is fine).
    pub fn detach_policy(&self, name: &str, target: &str) -> Result<()> {
        crate::policies::check_name(name)?;
        let mut st = self.lock()?;
        let Some(mut set) = st.targets.get(target).cloned() else { return Ok(()) };
        if !set.remove(name) {
            return Ok(());
        }
        self.commit(&mut st, vec![Change::Target(target.to_string(), set)])
    }

    /// The target ARNs whose policies apply to a target: itself and, for a thing group, its
    /// ancestors.
    fn with_ancestors(&self, target: &str, parsed: &Target) -> Vec<String> {
        let mut out = vec![target.to_string()];
        if let Target::ThingGroup(name) = parsed
            && let Ok((_, ancestors)) = self.registry.describe_thing_group(name)
        {
            out.extend(ancestors.iter().map(|a| self.registry.arn(ResourceKind::ThingGroup, a)));
        }
        out
    }

    /// ListAttachedPolicies: the target's policies (with `recursive`, a thing group's ancestors'
    /// too), by name.
    pub fn list_attached_policies(&self, target: &str, recursive: bool, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        let parsed = self.parse_target(target)?;
        let targets = if recursive { self.with_ancestors(target, &parsed) } else { vec![target.to_string()] };
        let st = self.read();
        let names: BTreeSet<String> = targets.iter().filter_map(|t| st.targets.get(t)).flatten().cloned().collect();
        Ok(Page::sorted(names.into_iter().collect(), |n| n.clone(), true, after, limit))
    }

    /// ListTargetsForPolicy.
    pub fn list_targets_for_policy(&self, name: &str, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        crate::policies::check_name(name)?;
        let st = self.read();
        if !st.policies.contains_key(name) {
            return Err(not_found(format!("Policy {name} does not exist.")));
        }
        let targets: Vec<String> = st.by_policy.get(name).into_iter().flatten().cloned().collect();
        Ok(Page::sorted(targets, |t| t.clone(), true, after, limit))
    }

    /// The ARNs of the thing groups a thing is in, with their ancestors.
    pub(crate) fn group_arns_of_thing(&self, thing: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let Ok(p) = self.registry.list_thing_groups_for_thing(thing, after.as_deref(), 250) else { break };
            out.extend(p.items.iter().map(|g| self.registry.arn(ResourceKind::ThingGroup, g)));
            match p.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        out
    }

    /// The policies attached to any of these targets, by name, with their parsed default version.
    pub(crate) fn policies_of(st: &State, targets: &[String]) -> BTreeMap<String, Arc<Parsed>> {
        targets.iter().filter_map(|t| st.targets.get(t)).flatten().filter_map(|n| st.parsed.get(n).map(|p| (n.clone(), p.clone()))).collect()
    }

    /// The targets whose policies a principal acting as a thing gets: the principal itself (and
    /// a thing group principal's ancestors) plus the thing's groups when the thing is given.
    fn effective_targets(&self, principal: Option<&str>, thing: Option<&str>) -> Result<Vec<String>> {
        let mut targets = Vec::new();
        if let Some(p) = principal {
            let parsed = self.parse_target(p)?;
            targets.extend(self.with_ancestors(p, &parsed));
        }
        if let Some(t) = thing {
            self.registry.describe_thing(t)?;
            targets.extend(self.group_arns_of_thing(t));
        }
        Ok(targets)
    }

    /// GetEffectivePolicies.
    pub fn effective_policies(&self, principal: Option<&str>, thing: Option<&str>) -> Result<Vec<EffectivePolicy>> {
        let targets = self.effective_targets(principal, thing)?;
        let st = self.read();
        let names: BTreeSet<&String> = targets.iter().filter_map(|t| st.targets.get(t)).flatten().collect();
        Ok(names
            .into_iter()
            .filter_map(|n| st.policies.get(n))
            .map(|p| EffectivePolicy { name: p.name.clone(), arn: self.policy_arn(&p.name), document: p.document().to_string() })
            .collect())
    }

    /// TestAuthorization: each question evaluated against the principal's policies (and those
    /// of the thing named by the client id, when it is attached to the principal), plus
    /// `add`, less `skip`.
    pub fn test_authorization(
        &self,
        principal: Option<&str>,
        client_id: Option<&str>,
        infos: Vec<AuthInfo>,
        add: &[String],
        skip: &[String],
    ) -> Result<Vec<AuthResult>> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let mut targets = Vec::new();
        if let Some(p) = principal {
            let parsed = self.parse_target(p)?;
            targets.extend(self.with_ancestors(p, &parsed));
            if let Target::Cert(id) = &parsed {
                let pem = self.certificate_pem(id)?.unwrap_or_default();
                if let Ok(der) = identity::x509::pem_to_der(&pem) {
                    vars.extend(identity::x509::policy_variables(&der));
                }
            }
        }
        if let Some(c) = client_id {
            vars.insert("iot:ClientId".into(), c.to_string());
            let thing = self.registry.describe_thing(c).ok();
            let attached = thing.as_ref().is_some_and(|t| principal.is_some_and(|p| t.principals.contains_key(p)));
            vars.insert("iot:Connection.Thing.IsAttached".into(), attached.to_string());
            if let (true, Some(t)) = (attached, thing) {
                crate::connect::thing_vars(&mut vars, &t);
                targets.extend(self.group_arns_of_thing(c));
            }
        }
        let st = self.read();
        let mut policies = Self::policies_of(&st, &targets);
        for n in add {
            let p = st.parsed.get(n).ok_or_else(|| not_found(format!("Policy {n} does not exist.")))?;
            policies.insert(n.clone(), p.clone());
        }
        for n in skip {
            policies.remove(n);
        }
        drop(st);
        infos.into_iter().map(|info| self.answer(info, &policies, &vars)).collect()
    }

    fn answer(&self, info: AuthInfo, policies: &BTreeMap<String, Arc<Parsed>>, vars: &BTreeMap<String, String>) -> Result<AuthResult> {
        let action = match info.action_type.as_str() {
            "PUBLISH" => "iot:Publish",
            "SUBSCRIBE" => "iot:Subscribe",
            "RECEIVE" => "iot:Receive",
            "CONNECT" => "iot:Connect",
            other => return invalid(format!("actionType must be PUBLISH, SUBSCRIBE, RECEIVE or CONNECT, not {other:?}")),
        };
        let missing = RefCell::new(BTreeSet::new());
        let lookup = |k: &str| {
            let v = vars.get(k).cloned();
            if v.is_none() {
                missing.borrow_mut().insert(k.to_string());
            }
            v
        };
        let (mut allowed, mut explicit) = (Vec::new(), Vec::new());
        let mut covered = vec![false; info.resources.len()];
        for (name, p) in policies {
            let mut allows_all = !info.resources.is_empty();
            let mut denies = false;
            for (i, r) in info.resources.iter().enumerate() {
                match evaluate([&**p], &Request { action, resource: r, vars: &lookup }) {
                    Decision::Allow => covered[i] = true,
                    Decision::ExplicitDeny => {
                        denies = true;
                        allows_all = false;
                    }
                    Decision::ImplicitDeny => allows_all = false,
                }
            }
            if denies {
                explicit.push(name.clone());
            } else if allows_all {
                allowed.push(name.clone());
            }
        }
        let decision = if !explicit.is_empty() {
            "EXPLICIT_DENY"
        } else if !covered.is_empty() && covered.iter().all(|c| *c) {
            "ALLOWED"
        } else {
            "IMPLICIT_DENY"
        };
        let implicit = if decision == "IMPLICIT_DENY" { policies.keys().cloned().collect() } else { Vec::new() };
        if decision != "ALLOWED" {
            allowed.clear();
        }
        Ok(AuthResult { info, allowed, explicit_deny: explicit, implicit_deny: implicit, decision, missing: missing.into_inner().into_iter().collect() })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;
    use registry::{NameOrArn, NewThing, NewThingGroup, PrincipalType};

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

    fn info(action: &str, resource: &str) -> AuthInfo {
        AuthInfo { action_type: action.into(), resources: vec![resource.into()] }
    }

    #[test]
    fn a_deleted_groups_attachments_go_with_it_whoever_deletes_it() {
        let f = fixture();
        let a = &f.authz;
        let r = a.registry();
        a.create_policy("p", r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#, &[]).unwrap();
        for g in ["one", "two"] {
            r.create_thing_group(NewThingGroup { name: g.into(), ..Default::default() }).unwrap();
            a.attach_policy("p", &r.arn(registry::ResourceKind::ThingGroup, g)).unwrap();
        }
        // Deleted through the registry itself, no API in between.
        r.delete_thing_group("one", None).unwrap();
        let targets = |a: &Authz| a.list_targets_for_policy("p", None, 10).unwrap().items;
        assert_eq!(targets(a), [r.arn(registry::ResourceKind::ThingGroup, "two")]);
        r.create_thing_group(NewThingGroup { name: "one".into(), ..Default::default() }).unwrap();
        assert!(a.list_attached_policies(&r.arn(registry::ResourceKind::ThingGroup, "one"), false, None, 10).unwrap().items.is_empty());
        // Deleted by a writer no authorization service heard (a crash in between): forgotten
        // when the service starts.
        let docs = Arc::new(store::Documents::open(&f.dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
        let rc = registry::RegistryConfig { region: "us-east-1".into(), account_id: "123456789012".into(), thing_type_delete_delay: std::time::Duration::from_secs(0) };
        let alone = Arc::new(registry::Registry::open(docs.clone(), rc, Arc::new(registry::NoEvents)).unwrap());
        alone.delete_thing_group("two", None).unwrap();
        let config = AuthzConfig { region: "us-east-1".into(), account_id: "123456789012".into() };
        assert!(targets(&Authz::open(docs, config, alone, a.pki.clone(), Links::default()).unwrap()).is_empty());
    }

    #[test]
    fn group_policies_are_inherited_and_test_authorization_explains_itself() {
        let f = fixture();
        let a = &f.authz;
        let r = a.registry();
        let cert = a.create_keys_and_certificate(true).unwrap().certificate;
        let cert_arn = a.cert_arn(&cert.id);
        r.create_thing_group(NewThingGroup { name: "root".into(), ..Default::default() }).unwrap();
        r.create_thing_group(NewThingGroup { name: "leaf".into(), parent: Some("root".into()), ..Default::default() }).unwrap();
        r.create_thing(NewThing { name: "dev-1".into(), ..Default::default() }).unwrap();
        r.add_thing_to_thing_group(&NameOrArn { name: Some("leaf".into()), arn: None }, &NameOrArn { name: Some("dev-1".into()), arn: None }).unwrap();
        r.attach_thing_principal("dev-1", &cert_arn, PrincipalType::NonExclusive).unwrap();
        let connect = r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}"#;
        let publish = r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"},{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/secret"}]}"#;
        a.create_policy("connect", connect, &[]).unwrap();
        a.create_policy("publish", publish, &[]).unwrap();
        a.attach_policy("connect", &cert_arn).unwrap();
        let root_arn = r.arn(registry::ResourceKind::ThingGroup, "root");
        a.attach_policy("publish", &root_arn).unwrap();

        let leaf_arn = r.arn(registry::ResourceKind::ThingGroup, "leaf");
        assert!(a.list_attached_policies(&leaf_arn, false, None, 10).unwrap().items.is_empty());
        assert_eq!(a.list_attached_policies(&leaf_arn, true, None, 10).unwrap().items, ["publish"]);
        assert_eq!(a.list_targets_for_policy("publish", None, 10).unwrap().items, std::slice::from_ref(&root_arn));
        let names = |v: Vec<EffectivePolicy>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(names(a.effective_policies(Some(&cert_arn), None).unwrap()), ["connect"]);
        assert_eq!(names(a.effective_policies(Some(&cert_arn), Some("dev-1")).unwrap()), ["connect", "publish"]);

        let res = a
            .test_authorization(
                Some(&cert_arn),
                Some("dev-1"),
                vec![
                    info("CONNECT", &format!("{ARN}:client/dev-1")),
                    info("PUBLISH", &format!("{ARN}:topic/secret")),
                    info("SUBSCRIBE", &format!("{ARN}:topicfilter/x")),
                ],
                &[],
                &[],
            )
            .unwrap();
        assert_eq!((res[0].decision, res[0].allowed.clone()), ("ALLOWED", vec!["connect".to_string()]));
        assert_eq!((res[1].decision, res[1].explicit_deny.clone()), ("EXPLICIT_DENY", vec!["publish".to_string()]));
        assert_eq!(res[2].decision, "IMPLICIT_DENY");
        assert_eq!(res[2].implicit_deny.len(), 2);
        // Another client id: the thing is not the connection's, so no thing variables or groups.
        let res =
            a.test_authorization(Some(&cert_arn), Some("other"), vec![info("CONNECT", &format!("{ARN}:client/other"))], &[], &["connect".into()]).unwrap();
        assert_eq!(res[0].decision, "IMPLICIT_DENY");
        assert!(matches!(a.attach_policy("nope", &cert_arn), Err(AuthzError::NotFound(_))));
        assert!(matches!(a.attach_policy("connect", "arn:aws:iot:us-east-1:123456789012:thinggroup/none"), Err(AuthzError::NotFound(_))));
        assert!(matches!(a.attach_policy("connect", "garbage"), Err(AuthzError::Invalid(_))));
        a.detach_policy("connect", &cert_arn).unwrap();
        a.detach_policy("connect", &cert_arn).unwrap();
    }
}

/// Forgets the attachments of targets that no longer exist, on a writer caught up with every
/// node's commits (so that a node reacting to a deletion another node already reacted to
/// commits nothing). Blocking.
pub(crate) fn forget_targets(replica: &store::replica::Replica<State>, targets: &[String]) -> Result<()> {
    let mut st = replica.write().map_err(store::StoreError::from)?;
    let ops = targets
        .iter()
        .filter(|t| st.targets.contains_key(*t))
        .map(|t| Change::Target(t.clone(), BTreeSet::new()).doc_op())
        .collect::<Result<Vec<_>>>()?;
    if !ops.is_empty() {
        st.commit_docs(&ops).map_err(store::StoreError::from)?;
    }
    Ok(())
}
