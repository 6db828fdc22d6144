//! Static thing groups: a hierarchy fixed at creation (one parent, at most 100 children, at most
//! 7 levels), versioned properties, and membership of things (at most 10 groups per thing, and
//! never two groups of the same hierarchy — developer guide, "Thing groups").

use crate::error::{RegistryError, Result, invalid, not_found};
use crate::model::{AttributePayload, Attributes, NameOrArn, NewThingGroup, Page, Thing, ThingGroup, ThingGroupUpdate};
use crate::Writer;
use crate::state::{Change, State, THING_GROUP, terms};
use store::state::{Expect, Terms};
use crate::validate::{self, MAX_GROUP_ATTRIBUTES, MAX_TAGS};
use crate::{Event, Registry, ResourceKind, now_ms, uuid};
use std::collections::{BTreeMap, BTreeSet};

/// Deepest a group hierarchy may be (a root group is level 1).
pub const MAX_DEPTH: usize = 7;
/// Most direct children of a group.
pub const MAX_CHILDREN: usize = 100;
/// Most thing groups a thing may be in.
pub const MAX_GROUPS_PER_THING: usize = 10;

fn given_attributes(payload: Option<&AttributePayload>) -> Result<Option<Attributes>> {
    let Some(attrs) = payload.and_then(|p| p.attributes.as_ref()) else { return Ok(None) };
    for (k, v) in attrs {
        validate::attribute_name("thingGroupProperties.attributePayload.attributes", k)?;
        validate::attribute_value(&format!("thingGroupProperties.attributePayload.attributes.{k}"), v)?;
    }
    Ok(Some(attrs.clone()))
}

fn count(attrs: &Attributes) -> Result<()> {
    validate::attributes(attrs, MAX_GROUP_ATTRIBUTES, "A thing group")
}

impl Registry {
    pub(crate) fn group_in<'a>(&self, st: &'a State, name: &str) -> Result<&'a ThingGroup> {
        st.groups.get(name).ok_or_else(|| not_found(format!("Thing group {name} cannot be found.")))
    }

    /// The name a NameOrArn designates (checked, not looked up). `what` is the member prefix
    /// (`thingGroup`, `thing`, `billingGroup`).
    pub(crate) fn resolve(&self, kind: ResourceKind, what: &str, given: &NameOrArn) -> Result<String> {
        let from_arn = |arn: &str| -> Result<String> {
            match self.parse_arn(arn) {
                Some((k, name)) if k == kind => Ok(name),
                _ => invalid(format!("{what}Arn {arn} is not the ARN of a {} in this account and region.", kind.arn_type())),
            }
        };
        let name = match (&given.name, &given.arn) {
            (None, None) => return invalid(format!("Both {what}Arn and {what}Name are empty. Need to specify at least one of them.")),
            (Some(n), None) => n.clone(),
            (None, Some(a)) => from_arn(a)?,
            (Some(n), Some(a)) => {
                if from_arn(a)? != *n {
                    return invalid(format!("{what}Arn {a} does not match {what}Name {n}."));
                }
                n.clone()
            }
        };
        validate::name(&format!("{what}Name"), &name)?;
        Ok(name)
    }

    /// CreateThingGroup: the new group, or the existing one when parent and properties match.
    pub fn create_thing_group(&self, req: NewThingGroup) -> Result<ThingGroup> {
        validate::name("thingGroupName", &req.name)?;
        if let Some(p) = &req.parent {
            validate::name("parentGroupName", p)?;
        }
        if let Some(d) = &req.description {
            validate::description("thingGroupProperties.thingGroupDescription", d)?;
        }
        let attributes: Attributes = given_attributes(req.attributes.as_ref())?.unwrap_or_default().into_iter().filter(|(_, v)| !v.is_empty()).collect();
        count(&attributes)?;
        validate::tags(&req.tags)?;
        let tags: crate::Tags = req.tags.into_iter().collect();
        if tags.len() > MAX_TAGS {
            return invalid(format!("A resource can have at most {MAX_TAGS} tags; {} were given.", tags.len()));
        }
        let mut st = self.lock()?;
        if let Some(existing) = st.groups.get(&req.name) {
            if existing.parent == req.parent && existing.description == req.description && existing.attributes == attributes {
                return Ok(existing.clone());
            }
            return Err(RegistryError::AlreadyExists {
                message: format!("Thing Group {} already exists in current account with different properties", req.name),
                resource_id: existing.id.clone(),
                resource_arn: self.arn(ResourceKind::ThingGroup, &req.name),
            });
        }
        if let Some(p) = &req.parent {
            if !st.groups.contains_key(p) {
                return invalid(format!("The parent thing group {p} does not exist."));
            }
            let depth = st.ancestors(p).len() + 2;
            if depth > MAX_DEPTH {
                return invalid(format!("Thing group {} cannot be created under {p}: a group hierarchy can be at most {MAX_DEPTH} levels deep.", req.name));
            }
            if st.children.get(p).map_or(0, BTreeSet::len) >= MAX_CHILDREN {
                return invalid(format!("Thing group {p} already has {MAX_CHILDREN} child groups, the most a group can have."));
            }
        }
        let g = ThingGroup { name: req.name, id: uuid(), parent: req.parent, description: req.description, attributes, version: 1, created_ms: now_ms(), tags };
        let mut events = vec![self.group_event(&st, "CREATED", &g)];
        if let Some(parent) = g.parent.as_ref().and_then(|p| st.groups.get(p)) {
            events.push(self.hierarchy_event("ADDED", parent, &g));
        }
        self.commit(&mut st, vec![Change::Group(g.clone())], events)?;
        Ok(g)
    }

    /// DescribeThingGroup: the group and its ancestors' names, root first.
    pub fn describe_thing_group(&self, name: &str) -> Result<(ThingGroup, Vec<String>)> {
        validate::name("thingGroupName", name)?;
        let st = self.read();
        let g = self.group_in(&st, name)?.clone();
        let ancestors = st.ancestors(name).into_iter().map(|a| a.name.clone()).collect();
        Ok((g, ancestors))
    }

    /// UpdateThingGroup: description and attributes (replaced or merged); version + 1.
    pub fn update_thing_group(&self, req: ThingGroupUpdate) -> Result<ThingGroup> {
        validate::name("thingGroupName", &req.name)?;
        if let Some(d) = &req.description {
            validate::description("thingGroupProperties.thingGroupDescription", d)?;
        }
        let given = given_attributes(req.attributes.as_ref())?;
        let mut st = self.lock()?;
        let mut g = self.group_in(&st, &req.name)?.clone();
        if let Some(v) = req.expected_version
            && v != g.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for thing group {} does not match the expected version ({v}); the current version is {}.",
                g.name, g.version
            )));
        }
        if let Some(d) = req.description {
            g.description = Some(d);
        }
        if let Some(attrs) = given {
            if req.attributes.as_ref().is_some_and(|p| p.merge) {
                for (k, v) in attrs {
                    if v.is_empty() {
                        g.attributes.remove(&k);
                    } else {
                        g.attributes.insert(k, v);
                    }
                }
            } else {
                g.attributes = attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            }
        }
        count(&g.attributes)?;
        g.version += 1;
        let events = vec![self.group_event(&st, "UPDATED", &g)];
        self.commit(&mut st, vec![Change::Group(g.clone())], events)?;
        Ok(g)
    }

    /// DeleteThingGroup: succeeds when there is no such group; refused while it has child
    /// groups. Its things leave it.
    pub fn delete_thing_group(&self, name: &str, expected_version: Option<i64>) -> Result<()> {
        validate::name("thingGroupName", name)?;
        let mut st = self.lock()?;
        let Some(g) = st.groups.get(name).cloned() else { return Ok(()) };
        if let Some(v) = expected_version
            && v != g.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for thing group {name} does not match the expected version ({v}); the current version is {}.",
                g.version
            )));
        }
        if st.children.contains_key(name) {
            return invalid(format!("Cannot delete thing group : {name} when there are still child groups attached to it"));
        }
        self.leave_thing_group(&mut st, &g)?;
        let mut events = Vec::new();
        if let Some(parent) = g.parent.as_ref().and_then(|p| st.groups.get(p)) {
            events.push(self.hierarchy_event("REMOVED", parent, &g));
        }
        events.push(self.group_event(&st, "DELETED", &g));
        self.commit(&mut st, vec![Change::DropGroup(name.to_string())], events)?;
        // A thing added while the group was emptied committed before the group went (its
        // commit checked the group): it is found now.
        self.leave_thing_group(&mut st, &g)
    }

    /// Takes every thing out of a group, a page per commit.
    fn leave_thing_group(&self, st: &mut Writer<'_>, g: &ThingGroup) -> Result<()> {
        let term = Terms::Exact(terms::in_group(&g.name));
        loop {
            let things = self.find_things(Some(&term), None, 1000)?;
            if things.is_empty() {
                return Ok(());
            }
            let mut changes = Vec::new();
            let mut events = Vec::new();
            for (mut t, rev) in things {
                if let Some(membership) = t.groups.remove(&g.name) {
                    events.push(self.membership_event("REMOVED", g, &t, &membership));
                }
                changes.push(Change::Thing(t, Expect::Rev(rev)));
            }
            self.commit(st, changes, events)?;
        }
    }

    /// ListThingGroups. With a parent: its children (all descendants when `recursive`). Without:
    /// every group (only root groups when `recursive` is false). Then the name prefix filter.
    pub fn list_thing_groups(
        &self,
        parent: Option<&str>,
        prefix: Option<&str>,
        recursive: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ThingGroup>> {
        if let Some(p) = parent {
            validate::name("parentGroup", p)?;
        }
        if let Some(p) = prefix {
            validate::name("namePrefixFilter", p)?;
        }
        let st = self.read();
        let names: BTreeSet<String> = match parent {
            Some(p) => {
                self.group_in(&st, p)?;
                if recursive == Some(true) { st.descendants(p).into_iter().collect() } else { st.children.get(p).cloned().unwrap_or_default() }
            }
            None if recursive == Some(false) => st.groups.values().filter(|g| g.parent.is_none()).map(|g| g.name.clone()).collect(),
            None => st.groups.keys().cloned().collect(),
        };
        let iter = names
            .into_iter()
            .filter(|n| after.is_none_or(|a| n.as_str() > a))
            .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
            .filter_map(|n| st.groups.get(&n).cloned());
        Ok(Page::take(iter, limit))
    }

    /// Checks the memberships a thing would have: at most ten groups, one per hierarchy.
    fn check_memberships(&self, st: &State, thing: &str, groups: &BTreeSet<String>) -> Result<()> {
        if groups.len() > MAX_GROUPS_PER_THING {
            return invalid(format!("Thing {thing} cannot be in more than {MAX_GROUPS_PER_THING} thing groups."));
        }
        let mut roots: BTreeMap<&str, &str> = BTreeMap::new();
        for g in groups {
            let root = st.root_of(g);
            if let Some(other) = roots.insert(root, g) {
                return invalid(format!(
                    "Thing {thing} cannot be in both thing groups {other} and {g}: a thing can be in only one group of a hierarchy (here, the one rooted at {root})."
                ));
            }
        }
        Ok(())
    }

    /// Moves a thing (read at `rev`) into and out of groups in one commit, checking that the
    /// groups are as read.
    fn change_memberships(&self, thing: &Thing, rev: u64, add: &BTreeSet<String>, remove: &BTreeSet<String>) -> Result<()> {
        let st = self.read();
        for g in add.iter().chain(remove) {
            self.group_in(&st, g)?;
        }
        let mut t = thing.clone();
        let mut events: Vec<Event> = Vec::new();
        for g in remove {
            if let Some(membership) = t.groups.remove(g)
                && let Some(group) = st.groups.get(g)
            {
                events.push(self.membership_event("REMOVED", group, &t, &membership));
            }
        }
        for g in add {
            if t.groups.contains_key(g) {
                continue;
            }
            let membership = uuid();
            if let Some(group) = st.groups.get(g) {
                events.push(self.membership_event("ADDED", group, &t, &membership));
            }
            t.groups.insert(g.clone(), membership);
        }
        if t == *thing {
            return Ok(());
        }
        self.check_memberships(&st, &t.name, &t.groups.keys().cloned().collect())?;
        // The hierarchy rule depends on every group the thing ends up in.
        let deps: Vec<(&str, &str)> = t.groups.keys().chain(remove).map(|g| (THING_GROUP, g.as_str())).collect();
        let checks = Registry::checks(&st, &deps);
        drop(st);
        self.commit_things(vec![Change::Thing(t, Expect::Rev(rev))], checks, events)
    }

    /// AddThingToThingGroup (a thing already in the group stays, successfully).
    pub fn add_thing_to_thing_group(&self, group: &NameOrArn, thing: &NameOrArn) -> Result<()> {
        let g = self.resolve(ResourceKind::ThingGroup, "thingGroup", group)?;
        let t = self.resolve(ResourceKind::Thing, "thing", thing)?;
        self.group_in(&self.read(), &g)?;
        let (thing, rev) = self.thing_in(&t)?;
        self.change_memberships(&thing, rev, &BTreeSet::from([g]), &BTreeSet::new())
    }

    /// RemoveThingFromThingGroup (a thing not in the group is left alone, successfully).
    pub fn remove_thing_from_thing_group(&self, group: &NameOrArn, thing: &NameOrArn) -> Result<()> {
        let g = self.resolve(ResourceKind::ThingGroup, "thingGroup", group)?;
        let t = self.resolve(ResourceKind::Thing, "thing", thing)?;
        self.group_in(&self.read(), &g)?;
        let (thing, rev) = self.thing_in(&t)?;
        self.change_memberships(&thing, rev, &BTreeSet::new(), &BTreeSet::from([g]))
    }

    /// UpdateThingGroupsForThing: removals, then additions, checked and committed together.
    pub fn update_thing_groups_for_thing(&self, thing: &str, add: &[String], remove: &[String]) -> Result<()> {
        validate::name("thingName", thing)?;
        for g in add {
            validate::name("thingGroupsToAdd.member", g)?;
        }
        for g in remove {
            validate::name("thingGroupsToRemove.member", g)?;
        }
        let (t, rev) = self.thing_in(thing)?;
        let add: BTreeSet<String> = add.iter().cloned().collect();
        let remove: BTreeSet<String> = remove.iter().filter(|g| !add.contains(*g)).cloned().collect();
        self.change_memberships(&t, rev, &add, &remove)
    }

    /// ListThingsInThingGroup: thing names after `after`; with `recursive`, also the things of
    /// every descendant group.
    pub fn list_things_in_thing_group(&self, group: &str, recursive: bool, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        validate::name("thingGroupName", group)?;
        let groups: Vec<String> = {
            let st = self.read();
            self.group_in(&st, group)?;
            let mut groups = vec![group.to_string()];
            if recursive {
                groups.extend(st.descendants(group));
            }
            groups
        };
        // Each group's things come in name order, so the first `limit + 1` names of the union
        // are among the first `limit + 1` of each group.
        let mut names = BTreeSet::new();
        for g in &groups {
            let things = self.find_things(Some(&Terms::Exact(terms::in_group(g))), after, limit + 1)?;
            names.extend(things.into_iter().map(|(t, _)| t.name));
        }
        Ok(Page::take(names.into_iter(), limit))
    }

    /// ListThingGroupsForThing: the groups the thing is in and their ancestors, by name.
    pub fn list_thing_groups_for_thing(&self, thing: &str, after: Option<&str>, limit: usize) -> Result<Page<String>> {
        validate::name("thingName", thing)?;
        let (t, _) = self.thing_in(thing)?;
        let st = self.read();
        let mut names = BTreeSet::new();
        for g in t.groups.keys() {
            names.insert(g.clone());
            names.extend(st.ancestors(g).into_iter().map(|a| a.name.clone()));
        }
        Ok(Page::take(names.into_iter().filter(|n| after.is_none_or(|a| n.as_str() > a)), limit))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    fn by_name(n: &str) -> NameOrArn {
        NameOrArn { name: Some(n.into()), arn: None }
    }

    #[test]
    fn hierarchy_depth_is_at_most_seven() {
        let f = fixture(0);
        let mut parent: Option<String> = None;
        for i in 1..=7 {
            let g = f.group(&format!("l{i}"), parent.as_deref());
            parent = Some(g.name);
        }
        let (g, ancestors) = f.registry.describe_thing_group("l7").unwrap();
        assert_eq!(g.parent.as_deref(), Some("l6"));
        assert_eq!(ancestors, ["l1", "l2", "l3", "l4", "l5", "l6"]);
        let e = f.registry.create_thing_group(NewThingGroup { name: "l8".into(), parent: Some("l7".into()), ..Default::default() });
        assert!(matches!(e, Err(RegistryError::Invalid(m)) if m.contains("7 levels")));
        let e = f.registry.create_thing_group(NewThingGroup { name: "x".into(), parent: Some("missing".into()), ..Default::default() });
        assert!(matches!(e, Err(RegistryError::Invalid(_))));
    }

    #[test]
    fn groups_with_children_cannot_be_deleted() {
        let f = fixture(0);
        f.group("root", None);
        f.group("kid", Some("root"));
        let e = f.registry.delete_thing_group("root", None);
        assert!(matches!(e, Err(RegistryError::Invalid(m)) if m.contains("child groups")));
        f.registry.delete_thing_group("kid", None).unwrap();
        assert!(matches!(f.registry.delete_thing_group("root", Some(5)), Err(RegistryError::VersionConflict(_))));
        f.registry.delete_thing_group("root", Some(1)).unwrap();
        f.registry.delete_thing_group("root", None).unwrap();
    }

    #[test]
    fn a_thing_is_in_at_most_ten_groups_and_one_per_hierarchy() {
        let f = fixture(0);
        f.thing("t");
        for i in 0..11 {
            f.group(&format!("g{i:02}"), None);
        }
        for i in 0..10 {
            f.registry.add_thing_to_thing_group(&by_name(&format!("g{i:02}")), &by_name("t")).unwrap();
        }
        let e = f.registry.add_thing_to_thing_group(&by_name("g10"), &by_name("t"));
        assert!(matches!(e, Err(RegistryError::Invalid(m)) if m.contains("10")));
        // Adding again is fine.
        f.registry.add_thing_to_thing_group(&by_name("g00"), &by_name("t")).unwrap();
        f.group("child", Some("g00"));
        f.registry.remove_thing_from_thing_group(&by_name("g09"), &by_name("t")).unwrap();
        let e = f.registry.add_thing_to_thing_group(&by_name("child"), &by_name("t"));
        assert!(matches!(e, Err(RegistryError::Invalid(m)) if m.contains("hierarchy")));
    }

    #[test]
    fn membership_by_arn_and_listing_recursively() {
        let f = fixture(0);
        let r = &f.registry;
        f.group("a", None);
        f.group("b", Some("a"));
        f.group("c", Some("b"));
        f.group("other", None);
        for t in ["t1", "t2", "t3"] {
            f.thing(t);
        }
        let arn = NameOrArn { name: None, arn: Some(r.arn(ResourceKind::ThingGroup, "c")) };
        r.add_thing_to_thing_group(&arn, &NameOrArn { name: None, arn: Some(r.arn(ResourceKind::Thing, "t1")) }).unwrap();
        r.add_thing_to_thing_group(&by_name("a"), &by_name("t2")).unwrap();
        r.update_thing_groups_for_thing("t3", &["b".into(), "other".into()], &[]).unwrap();
        let things = |g: &str, rec: bool| r.list_things_in_thing_group(g, rec, None, 10).unwrap().items;
        assert_eq!(things("a", false), ["t2"]);
        assert_eq!(things("a", true), ["t1", "t2", "t3"]);
        assert_eq!(things("b", true), ["t1", "t3"]);
        assert_eq!(r.list_thing_groups_for_thing("t1", None, 10).unwrap().items, ["a", "b", "c"]);
        assert_eq!(r.list_thing_groups_for_thing("t3", None, 10).unwrap().items, ["a", "b", "other"]);
        let names = |p: Page<ThingGroup>| p.items.into_iter().map(|g| g.name).collect::<Vec<_>>();
        assert_eq!(names(r.list_thing_groups(Some("a"), None, None, None, 10).unwrap()), ["b"]);
        assert_eq!(names(r.list_thing_groups(Some("a"), None, Some(true), None, 10).unwrap()), ["b", "c"]);
        assert_eq!(names(r.list_thing_groups(None, None, Some(false), None, 10).unwrap()), ["a", "other"]);
        assert_eq!(names(r.list_thing_groups(None, Some("o"), None, None, 10).unwrap()), ["other"]);
        assert!(matches!(r.list_thing_groups(Some("zz"), None, None, None, 10), Err(RegistryError::NotFound(_))));
        let wrong = NameOrArn { name: Some("a".into()), arn: Some(r.arn(ResourceKind::ThingGroup, "b")) };
        assert!(matches!(r.add_thing_to_thing_group(&wrong, &by_name("t1")), Err(RegistryError::Invalid(_))));
        assert!(matches!(r.add_thing_to_thing_group(&NameOrArn::default(), &by_name("t1")), Err(RegistryError::Invalid(_))));
        assert!(matches!(r.add_thing_to_thing_group(&by_name("nope"), &by_name("t1")), Err(RegistryError::NotFound(_))));
        // Deleting a group takes its things out of it; a restart keeps the memberships.
        r.delete_thing_group("other", None).unwrap();
        let again = f.reopen();
        assert_eq!(again.list_thing_groups_for_thing("t3", None, 10).unwrap().items, ["a", "b"]);
        assert_eq!(again.list_things_in_thing_group("a", true, None, 10).unwrap().items, ["t1", "t2", "t3"]);
    }

    #[test]
    fn update_merges_attributes_and_bumps_the_version() {
        let f = fixture(0);
        let r = &f.registry;
        let req = NewThingGroup {
            name: "g".into(),
            attributes: Some(AttributePayload { attributes: Some([("a".to_string(), "1".to_string())].into()), merge: false }),
            ..Default::default()
        };
        r.create_thing_group(req.clone()).unwrap();
        assert_eq!(r.create_thing_group(req).unwrap().version, 1);
        let u = ThingGroupUpdate {
            name: "g".into(),
            description: Some("desc".into()),
            attributes: Some(AttributePayload { attributes: Some([("b".to_string(), "2".to_string())].into()), merge: true }),
            expected_version: Some(1),
        };
        let g = r.update_thing_group(u.clone()).unwrap();
        assert_eq!(g.version, 2);
        assert_eq!(g.attributes.len(), 2);
        assert!(matches!(r.update_thing_group(u), Err(RegistryError::VersionConflict(_))));
        let e = r.create_thing_group(NewThingGroup { name: "g".into(), ..Default::default() });
        assert!(matches!(e, Err(RegistryError::AlreadyExists { .. })));
    }

    #[test]
    fn group_events_follow_the_developer_guide() {
        let f = fixture(0);
        let r = &f.registry;
        let all = ["THING_GROUP", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY"];
        r.update_event_configurations(&all.iter().map(|k| (k.to_string(), true)).collect()).unwrap();
        let root = f.group("root", None);
        f.group("kid", Some("root"));
        f.thing("t");
        r.add_thing_to_thing_group(&by_name("kid"), &by_name("t")).unwrap();
        let events = f.events.0.lock().unwrap().drain(..).collect::<Vec<_>>();
        let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "$aws/events/thingGroup/root/created",
                "$aws/events/thingGroup/kid/created",
                "$aws/events/thingGroupHierarchy/thingGroup/root/childThingGroup/kid/added",
                "$aws/events/thingGroupMembership/thingGroup/kid/thing/t/added",
            ]
        );
        let kid: serde_json::Value = serde_json::from_slice(&events[1].payload).unwrap();
        assert_eq!(kid["parentGroupName"], "root");
        assert_eq!(kid["parentGroupId"], root.id.as_str());
        assert_eq!(kid["rootToParentThingGroups"][0]["groupArn"], "arn:aws:iot:us-east-1:123456789012:thinggroup/root");
        let added: serde_json::Value = serde_json::from_slice(&events[3].payload).unwrap();
        r.remove_thing_from_thing_group(&by_name("kid"), &by_name("t")).unwrap();
        let removed = f.events.0.lock().unwrap().drain(..).collect::<Vec<_>>();
        let removed: serde_json::Value = serde_json::from_slice(&removed[0].payload).unwrap();
        assert_eq!(removed["operation"], "REMOVED");
        assert_eq!(removed["membershipId"], added["membershipId"]);
    }
}
