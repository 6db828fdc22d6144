//! Things and thing principals over HTTP: CreateThing, DescribeThing, UpdateThing, DeleteThing,
//! ListThings, AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals(V2),
//! ListPrincipalThings(V2).

use super::{Inner, done, expected_version, paging, with_token};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use registry::{NewThing, PrincipalType, ResourceKind, Thing, ThingFilter, ThingUpdate};
use serde_json::{Value, json};

/// The `x-amzn-principal` header (the model's `principal` member).
fn principal(req: &ApiRequest) -> Result<&str, ApiError> {
    req.input().required("principal")
}

fn principal_type(req: &ApiRequest) -> Result<Option<PrincipalType>, ApiError> {
    match req.input().text("thingPrincipalType")? {
        None => Ok(None),
        Some(v) => PrincipalType::parse(v)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("thingPrincipalType must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING, not {v:?}"))),
    }
}

impl Inner {
    fn thing_arn(&self, name: &str) -> String {
        self.registry.arn(ResourceKind::Thing, name)
    }

    /// A thing as ListThings shows it (ThingAttribute).
    fn thing_attribute(&self, t: &Thing) -> Value {
        let mut v = json!({
            "thingName": t.name,
            "thingArn": self.thing_arn(&t.name),
            "attributes": t.attributes,
            "version": t.version,
        });
        if let Some(ty) = &t.type_name {
            v["thingTypeName"] = json!(ty);
        }
        v
    }

    pub(super) fn create_thing(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let t = self.registry.create_thing(NewThing {
            name: req.input().required("thingName")?.to_string(),
            type_name: body.str("thingTypeName")?,
            attributes: body.attribute_payload("attributePayload")?,
            billing_group: body.str("billingGroupName")?,
        })?;
        ApiResponse::json(json!({"thingName": t.name, "thingArn": self.thing_arn(&t.name), "thingId": t.id}))
    }

    pub(super) fn describe_thing(&self, req: &ApiRequest) -> Reply {
        let t = self.registry.describe_thing(req.input().required("thingName")?)?;
        let mut v = json!({
            "defaultClientId": t.name,
            "thingName": t.name,
            "thingId": t.id,
            "thingArn": self.thing_arn(&t.name),
            "attributes": t.attributes,
            "version": t.version,
        });
        if let Some(ty) = &t.type_name {
            v["thingTypeName"] = json!(ty);
        }
        if let Some(b) = &t.billing_group {
            v["billingGroupName"] = json!(b);
        }
        ApiResponse::json(v)
    }

    pub(super) fn update_thing(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        self.registry.update_thing(ThingUpdate {
            name: req.input().required("thingName")?.to_string(),
            type_name: body.str("thingTypeName")?,
            remove_type: body.bool("removeThingType")?,
            attributes: body.attribute_payload("attributePayload")?,
            expected_version: body.i64("expectedVersion")?,
        })?;
        done()
    }

    pub(super) fn delete_thing(&self, req: &ApiRequest) -> Reply {
        self.registry.delete_thing(req.input().required("thingName")?, expected_version(req)?)?;
        done()
    }

    pub(super) fn list_things(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let filter = ThingFilter {
            attribute_name: req.input().str("attributeName")?,
            attribute_value: req.input().str("attributeValue")?,
            prefix: req.input().bool("usePrefixAttributeValue")?,
            type_name: req.input().str("thingTypeName")?,
        };
        let page = self.registry.list_things(&filter, after.as_deref(), limit)?;
        let things: Vec<Value> = page.items.iter().map(|t| self.thing_attribute(t)).collect();
        ApiResponse::json(with_token(json!({ "things": things }), &page))
    }

    pub(super) fn attach_thing_principal(&self, req: &ApiRequest) -> Reply {
        let ty = principal_type(req)?.unwrap_or(PrincipalType::NonExclusive);
        self.registry.attach_thing_principal(req.input().required("thingName")?, principal(req)?, ty)?;
        done()
    }

    pub(super) fn detach_thing_principal(&self, req: &ApiRequest) -> Reply {
        self.registry.detach_thing_principal(req.input().required("thingName")?, principal(req)?)?;
        done()
    }

    pub(super) fn list_thing_principals(&self, req: &ApiRequest, v2: bool) -> Reply {
        let (after, limit) = paging(req)?;
        let ty = if v2 { principal_type(req)? } else { None };
        let page = self.registry.list_thing_principals(req.input().required("thingName")?, ty, after.as_deref(), limit)?;
        let out = if v2 {
            let items: Vec<Value> = page.items.iter().map(|(p, k)| json!({"principal": p, "thingPrincipalType": k.as_str()})).collect();
            json!({ "thingPrincipalObjects": items })
        } else {
            json!({ "principals": page.items.iter().map(|(p, _)| p).collect::<Vec<_>>() })
        };
        ApiResponse::json(with_token(out, &page))
    }

    pub(super) fn list_principal_things(&self, req: &ApiRequest, v2: bool) -> Reply {
        let (after, limit) = paging(req)?;
        let ty = if v2 { principal_type(req)? } else { None };
        let page = self.registry.list_principal_things(principal(req)?, ty, after.as_deref(), limit)?;
        let out = if v2 {
            let items: Vec<Value> = page.items.iter().map(|(t, k)| json!({"thingName": t, "thingPrincipalType": k.as_str()})).collect();
            json!({ "principalThingObjects": items })
        } else {
            json!({ "things": page.items.iter().map(|(t, _)| t).collect::<Vec<_>>() })
        };
        ApiResponse::json(with_token(out, &page))
    }
}
