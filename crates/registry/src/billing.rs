//! Billing groups: create (idempotent for the same properties), describe, update (versioned),
//! delete (idempotent; its things leave it), list, and membership (a thing is in at most one
//! billing group; billing groups have no hierarchy).

use crate::error::{RegistryError, Result, invalid, not_found};
use crate::model::{BillingGroup, NameOrArn, Page};
use crate::state::{BILLING_GROUP, Change, State, map_after, terms};
use store::state::{Expect, Terms};
use crate::validate::{self, MAX_TAGS};
use crate::{Registry, ResourceKind, now_ms, uuid};

/// CreateBillingGroup's input.
#[derive(Debug, Clone, Default)]
pub struct NewBillingGroup {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Registry {
    fn billing_in<'a>(&self, st: &'a State, name: &str) -> Result<&'a BillingGroup> {
        st.billing.get(name).ok_or_else(|| not_found(format!("Billing group {name} cannot be found.")))
    }

    /// CreateBillingGroup: the new group, or the existing one when its properties are the same.
    pub fn create_billing_group(&self, req: NewBillingGroup) -> Result<BillingGroup> {
        validate::name("billingGroupName", &req.name)?;
        if let Some(d) = &req.description {
            validate::description("billingGroupProperties.billingGroupDescription", d)?;
        }
        validate::tags(&req.tags)?;
        let tags: crate::Tags = req.tags.into_iter().collect();
        if tags.len() > MAX_TAGS {
            return invalid(format!("A resource can have at most {MAX_TAGS} tags; {} were given.", tags.len()));
        }
        let mut st = self.lock()?;
        if let Some(existing) = st.billing.get(&req.name) {
            if existing.description == req.description {
                return Ok(existing.clone());
            }
            return Err(RegistryError::AlreadyExists {
                message: format!("Billing Group {} already exists in current account with different properties", req.name),
                resource_id: existing.id.clone(),
                resource_arn: self.arn(ResourceKind::BillingGroup, &req.name),
            });
        }
        let b = BillingGroup { name: req.name, id: uuid(), description: req.description, version: 1, created_ms: now_ms(), tags };
        self.commit(&mut st, vec![Change::Billing(b.clone())], Vec::new())?;
        Ok(b)
    }

    /// DescribeBillingGroup.
    pub fn describe_billing_group(&self, name: &str) -> Result<BillingGroup> {
        validate::name("billingGroupName", name)?;
        let st = self.read();
        self.billing_in(&st, name).cloned()
    }

    /// UpdateBillingGroup: the properties are replaced; version + 1.
    pub fn update_billing_group(&self, name: &str, description: Option<String>, expected_version: Option<i64>) -> Result<BillingGroup> {
        validate::name("billingGroupName", name)?;
        if let Some(d) = &description {
            validate::description("billingGroupProperties.billingGroupDescription", d)?;
        }
        let mut st = self.lock()?;
        let mut b = self.billing_in(&st, name)?.clone();
        if let Some(v) = expected_version
            && v != b.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for billing group {name} does not match the expected version ({v}); the current version is {}.",
                b.version
            )));
        }
        b.description = description;
        b.version += 1;
        self.commit(&mut st, vec![Change::Billing(b.clone())], Vec::new())?;
        Ok(b)
    }

    /// DeleteBillingGroup: succeeds when there is no such group; its things leave it.
    pub fn delete_billing_group(&self, name: &str, expected_version: Option<i64>) -> Result<()> {
        validate::name("billingGroupName", name)?;
        let mut st = self.lock()?;
        let Some(b) = st.billing.get(name) else { return Ok(()) };
        if let Some(v) = expected_version
            && v != b.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for billing group {name} does not match the expected version ({v}); the current version is {}.",
                b.version
            )));
        }
        self.leave_billing_group(&mut st, name)?;
        self.commit(&mut st, vec![Change::DropBilling(name.to_string())], Vec::new())?;
        // A thing added while the group was emptied committed before the group went (its
        // commit checked the group): it is found now.
        self.leave_billing_group(&mut st, name)
    }

    /// Takes every thing out of a billing group, a page per commit.
    fn leave_billing_group(&self, st: &mut crate::Writer<'_>, name: &str) -> Result<()> {
        let term = Terms::Exact(terms::in_billing(name));
        loop {
            let things = self.find_things(Some(&term), None, 1000)?;
            if things.is_empty() {
                return Ok(());
            }
            let changes = things
                .into_iter()
                .map(|(mut t, rev)| {
                    t.billing_group = None;
                    Change::Thing(t, Expect::Rev(rev))
                })
                .collect();
            self.commit(st, changes, Vec::new())?;
        }
    }

    /// ListBillingGroups: groups after `after` whose name starts with `prefix`.
    pub fn list_billing_groups(&self, prefix: Option<&str>, after: Option<&str>, limit: usize) -> Result<Page<BillingGroup>> {
        if let Some(p) = prefix {
            validate::name("namePrefixFilter", p)?;
        }
        let st = self.read();
        let iter = map_after(&st.billing, after).map(|(_, b)| b).filter(|b| prefix.is_none_or(|p| b.name.starts_with(p)));
        Ok(Page::take(iter.cloned(), limit))
    }

    /// AddThingToBillingGroup: refused when the thing is in another billing group.
    pub fn add_thing_to_billing_group(&self, group: &NameOrArn, thing: &NameOrArn) -> Result<()> {
        let g = self.resolve(ResourceKind::BillingGroup, "billingGroup", group)?;
        let t = self.resolve(ResourceKind::Thing, "thing", thing)?;
        let (mut thing, rev) = self.thing_in(&t)?;
        let checks = {
            let st = self.read();
            self.billing_in(&st, &g)?;
            Registry::checks(&st, &[(BILLING_GROUP, g.as_str())])
        };
        match &thing.billing_group {
            Some(current) if *current == g => return Ok(()),
            Some(current) => {
                return invalid(format!(
                    "Thing {t} is already in billing group {current}; a thing can be in only one billing group. Remove it from {current} first."
                ));
            }
            None => {}
        }
        thing.billing_group = Some(g);
        self.commit_things(vec![Change::Thing(thing, Expect::Rev(rev))], checks, Vec::new())
    }

    /// RemoveThingFromBillingGroup (a thing not in the group is left alone, successfully).
    pub fn remove_thing_from_billing_group(&self, group: &NameOrArn, thing: &NameOrArn) -> Result<()> {
        let g = self.resolve(ResourceKind::BillingGroup, "billingGroup", group)?;
        let t = self.resolve(ResourceKind::Thing, "thing", thing)?;
        self.billing_in(&self.read(), &g)?;
        let (mut thing, rev) = self.thing_in(&t)?;
        if thing.billing_group.as_ref() != Some(&g) {
            return Ok(());
        }
        thing.billing_group = None;
        self.commit_things(vec![Change::Thing(thing, Expect::Rev(rev))], Vec::new(), Vec::new())
    }

    /// ListThingsInBillingGroup.
    pub fn list_things_in_billing_group(&self, name: &str, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        validate::name("billingGroupName", name)?;
        self.billing_in(&self.read(), name)?;
        let things = self.find_things(Some(&Terms::Exact(terms::in_billing(name))), after, limit + 1)?;
        Ok(Page::take(things.into_iter().map(|(t, _)| t.name), limit))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    fn n(s: &str) -> NameOrArn {
        NameOrArn { name: Some(s.into()), arn: None }
    }

    #[test]
    fn a_thing_is_in_at_most_one_billing_group() {
        let f = fixture(0);
        let r = &f.registry;
        r.create_billing_group(NewBillingGroup { name: "b1".into(), ..Default::default() }).unwrap();
        r.create_billing_group(NewBillingGroup { name: "b2".into(), ..Default::default() }).unwrap();
        r.create_thing(NewThing { name: "t".into(), billing_group: Some("b1".into()), ..Default::default() }).unwrap();
        assert_eq!(r.describe_thing("t").unwrap().billing_group.as_deref(), Some("b1"));
        assert!(matches!(r.add_thing_to_billing_group(&n("b2"), &n("t")), Err(RegistryError::Invalid(m)) if m.contains("b1")));
        r.add_thing_to_billing_group(&n("b1"), &n("t")).unwrap();
        r.remove_thing_from_billing_group(&n("b1"), &n("t")).unwrap();
        r.add_thing_to_billing_group(&NameOrArn { name: None, arn: Some(r.arn(ResourceKind::BillingGroup, "b2")) }, &n("t")).unwrap();
        assert_eq!(r.list_things_in_billing_group("b2", None, 10).unwrap().items, ["t"]);
        assert!(r.list_things_in_billing_group("b1", None, 10).unwrap().items.is_empty());
        // Deleting the group takes the thing out of it.
        r.delete_billing_group("b2", Some(1)).unwrap();
        assert_eq!(r.describe_thing("t").unwrap().billing_group, None);
        r.delete_billing_group("b2", None).unwrap();
        let missing = r.create_thing(NewThing { name: "u".into(), billing_group: Some("nope".into()), ..Default::default() });
        assert!(matches!(missing, Err(RegistryError::NotFound(_))));
    }

    #[test]
    fn update_is_versioned_and_create_idempotent() {
        let f = fixture(0);
        let r = &f.registry;
        let req = NewBillingGroup { name: "b".into(), description: Some("d".into()), tags: vec![("k".into(), "v".into())] };
        let b = r.create_billing_group(req.clone()).unwrap();
        assert_eq!(r.create_billing_group(req).unwrap(), b);
        let e = r.create_billing_group(NewBillingGroup { name: "b".into(), ..Default::default() });
        assert!(matches!(e, Err(RegistryError::AlreadyExists { .. })));
        assert_eq!(r.update_billing_group("b", Some("e".into()), Some(1)).unwrap().version, 2);
        assert!(matches!(r.update_billing_group("b", None, Some(1)), Err(RegistryError::VersionConflict(_))));
        assert!(matches!(r.update_billing_group("zz", None, None), Err(RegistryError::NotFound(_))));
        let listed = r.list_billing_groups(Some("b"), None, 10).unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].description.as_deref(), Some("e"));
    }
}
