//! Billing groups over HTTP: CreateBillingGroup, DescribeBillingGroup, UpdateBillingGroup,
//! DeleteBillingGroup, ListBillingGroups, AddThingToBillingGroup, RemoveThingFromBillingGroup,
//! ListThingsInBillingGroup.

use super::{Inner, done, expected_version, paging, secs, with_token};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use registry::{NameOrArn, NewBillingGroup, ResourceKind};
use serde_json::{Value, json};

fn group_and_thing(req: &ApiRequest) -> Result<(NameOrArn, NameOrArn), ApiError> {
    let body = req.input();
    let group = NameOrArn { name: body.str("billingGroupName")?, arn: body.str("billingGroupArn")? };
    let thing = NameOrArn { name: body.str("thingName")?, arn: body.str("thingArn")? };
    Ok((group, thing))
}

impl Inner {
    fn billing_arn(&self, name: &str) -> String {
        self.registry.arn(ResourceKind::BillingGroup, name)
    }

    pub(super) fn create_billing_group(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let description = match body.obj("billingGroupProperties")? {
            Some(p) => p.str("billingGroupDescription")?,
            None => None,
        };
        let b =
            self.registry.create_billing_group(NewBillingGroup { name: req.input().required("billingGroupName")?.to_string(), description, tags: body.tags("tags")? })?;
        ApiResponse::json(json!({"billingGroupName": b.name, "billingGroupArn": self.billing_arn(&b.name), "billingGroupId": b.id}))
    }

    pub(super) fn describe_billing_group(&self, req: &ApiRequest) -> Reply {
        let b = self.registry.describe_billing_group(req.input().required("billingGroupName")?)?;
        let mut props = json!({});
        if let Some(d) = &b.description {
            props["billingGroupDescription"] = json!(d);
        }
        ApiResponse::json(json!({
            "billingGroupName": b.name,
            "billingGroupId": b.id,
            "billingGroupArn": self.billing_arn(&b.name),
            "version": b.version,
            "billingGroupProperties": props,
            "billingGroupMetadata": { "creationDate": secs(b.created_ms) },
        }))
    }

    pub(super) fn update_billing_group(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let props = body.obj("billingGroupProperties")?.ok_or_else(|| ApiError::invalid("billingGroupProperties is required"))?;
        let b = self.registry.update_billing_group(req.input().required("billingGroupName")?, props.str("billingGroupDescription")?, body.i64("expectedVersion")?)?;
        ApiResponse::json(json!({ "version": b.version }))
    }

    pub(super) fn delete_billing_group(&self, req: &ApiRequest) -> Reply {
        self.registry.delete_billing_group(req.input().required("billingGroupName")?, expected_version(req)?)?;
        done()
    }

    pub(super) fn list_billing_groups(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let page = self.registry.list_billing_groups(req.input().text("namePrefixFilter")?, after.as_deref(), limit)?;
        let groups: Vec<Value> = page.items.iter().map(|b| json!({"groupName": b.name, "groupArn": self.billing_arn(&b.name)})).collect();
        ApiResponse::json(with_token(json!({ "billingGroups": groups }), &page))
    }

    pub(super) fn add_thing_to_billing_group(&self, req: &ApiRequest) -> Reply {
        let (group, thing) = group_and_thing(req)?;
        self.registry.add_thing_to_billing_group(&group, &thing)?;
        done()
    }

    pub(super) fn remove_thing_from_billing_group(&self, req: &ApiRequest) -> Reply {
        let (group, thing) = group_and_thing(req)?;
        self.registry.remove_thing_from_billing_group(&group, &thing)?;
        done()
    }

    pub(super) fn list_things_in_billing_group(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let page = self.registry.list_things_in_billing_group(req.input().required("billingGroupName")?, after.as_deref(), limit)?;
        ApiResponse::json(with_token(json!({ "things": page.items }), &page))
    }
}
