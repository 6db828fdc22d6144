//! Static thing groups over HTTP: CreateThingGroup, DescribeThingGroup, UpdateThingGroup,
//! DeleteThingGroup, ListThingGroups, AddThingToThingGroup, RemoveThingFromThingGroup,
//! UpdateThingGroupsForThing, ListThingsInThingGroup, ListThingGroupsForThing.

use super::{Inner, done, expected_version, paging, secs, with_token};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use registry::{NameOrArn, NewThingGroup, ResourceKind, ThingGroupUpdate};
use serde_json::{Value, json};

/// A thing group and a thing, by name or ARN (`overrideDynamicGroups` is accepted and ignored:
/// there are no dynamic groups).
fn group_and_thing(req: &ApiRequest) -> Result<(NameOrArn, NameOrArn), ApiError> {
    let body = req.input();
    body.bool("overrideDynamicGroups")?;
    let group = NameOrArn { name: body.str("thingGroupName")?, arn: body.str("thingGroupArn")? };
    let thing = NameOrArn { name: body.str("thingName")?, arn: body.str("thingArn")? };
    Ok((group, thing))
}

impl Inner {
    fn group_ref(&self, name: &str) -> Value {
        json!({"groupName": name, "groupArn": self.registry.arn(ResourceKind::ThingGroup, name)})
    }

    pub(super) fn create_thing_group(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let props = body.obj("thingGroupProperties")?;
        let (description, attributes) = match &props {
            Some(p) => (p.str("thingGroupDescription")?, p.attribute_payload("attributePayload")?),
            None => (None, None),
        };
        let g = self.registry.create_thing_group(NewThingGroup {
            name: req.input().required("thingGroupName")?.to_string(),
            parent: body.str("parentGroupName")?,
            description,
            attributes,
            tags: body.tags("tags")?,
        })?;
        ApiResponse::json(json!({
            "thingGroupName": g.name,
            "thingGroupArn": self.registry.arn(ResourceKind::ThingGroup, &g.name),
            "thingGroupId": g.id,
        }))
    }

    pub(super) fn describe_thing_group(&self, req: &ApiRequest) -> Reply {
        let (g, ancestors) = self.registry.describe_thing_group(req.input().required("thingGroupName")?)?;
        let mut props = json!({ "attributePayload": { "attributes": g.attributes } });
        if let Some(d) = &g.description {
            props["thingGroupDescription"] = json!(d);
        }
        let mut meta = json!({
            "rootToParentThingGroups": ancestors.iter().map(|a| self.group_ref(a)).collect::<Vec<_>>(),
            "creationDate": secs(g.created_ms),
        });
        if let Some(p) = &g.parent {
            meta["parentGroupName"] = json!(p);
        }
        ApiResponse::json(json!({
            "thingGroupName": g.name,
            "thingGroupId": g.id,
            "thingGroupArn": self.registry.arn(ResourceKind::ThingGroup, &g.name),
            "version": g.version,
            "thingGroupProperties": props,
            "thingGroupMetadata": meta,
            "status": "ACTIVE",
        }))
    }

    pub(super) fn update_thing_group(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let props = body.obj("thingGroupProperties")?.ok_or_else(|| ApiError::invalid("thingGroupProperties is required"))?;
        let g = self.registry.update_thing_group(ThingGroupUpdate {
            name: req.input().required("thingGroupName")?.to_string(),
            description: props.str("thingGroupDescription")?,
            attributes: props.attribute_payload("attributePayload")?,
            expected_version: body.i64("expectedVersion")?,
        })?;
        ApiResponse::json(json!({ "version": g.version }))
    }

    pub(super) fn delete_thing_group(&self, req: &ApiRequest) -> Reply {
        let name = req.input().required("thingGroupName")?;
        // The policies attached to the group go with it (authz reacts to the deletion).
        self.registry.delete_thing_group(name, expected_version(req)?)?;
        done()
    }

    pub(super) fn list_thing_groups(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let recursive = req.input().opt_bool("recursive")?;
        let page = self.registry.list_thing_groups(req.input().text("parentGroup")?, req.input().text("namePrefixFilter")?, recursive, after.as_deref(), limit)?;
        let groups: Vec<Value> = page.items.iter().map(|g| self.group_ref(&g.name)).collect();
        ApiResponse::json(with_token(json!({ "thingGroups": groups }), &page))
    }

    pub(super) fn add_thing_to_thing_group(&self, req: &ApiRequest) -> Reply {
        let (group, thing) = group_and_thing(req)?;
        self.registry.add_thing_to_thing_group(&group, &thing)?;
        done()
    }

    pub(super) fn remove_thing_from_thing_group(&self, req: &ApiRequest) -> Reply {
        let (group, thing) = group_and_thing(req)?;
        self.registry.remove_thing_from_thing_group(&group, &thing)?;
        done()
    }

    pub(super) fn update_thing_groups_for_thing(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        body.bool("overrideDynamicGroups")?;
        let thing = body.str("thingName")?.ok_or_else(|| ApiError::invalid("thingName is required"))?;
        let add = body.strs("thingGroupsToAdd")?.unwrap_or_default();
        let remove = body.strs("thingGroupsToRemove")?.unwrap_or_default();
        self.registry.update_thing_groups_for_thing(&thing, &add, &remove)?;
        done()
    }

    pub(super) fn list_things_in_thing_group(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let recursive = req.input().bool("recursive")?;
        let page = self.registry.list_things_in_thing_group(req.input().required("thingGroupName")?, recursive, after.as_deref(), limit)?;
        ApiResponse::json(with_token(json!({ "things": page.items }), &page))
    }

    pub(super) fn list_thing_groups_for_thing(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let page = self.registry.list_thing_groups_for_thing(req.input().required("thingName")?, after.as_deref(), limit)?;
        let groups: Vec<Value> = page.items.iter().map(|g| self.group_ref(g)).collect();
        ApiResponse::json(with_token(json!({ "thingGroups": groups }), &page))
    }
}
