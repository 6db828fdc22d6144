//! Thing types over HTTP: CreateThingType, DescribeThingType, ListThingTypes, UpdateThingType,
//! DeprecateThingType, DeleteThingType.

use super::{Inner, Input, done, paging, secs, with_token};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use registry::{NewThingType, PropagatingAttribute, ResourceKind, ThingType, ThingTypeUpdate};
use serde_json::{Map, Value, json};

/// The parts of a ThingTypeProperties structure.
struct Properties {
    description: Option<String>,
    searchable: Option<Vec<String>>,
    propagating: Option<Vec<PropagatingAttribute>>,
}

fn properties(body: &Input) -> Result<Properties, ApiError> {
    let Some(p) = body.obj("thingTypeProperties")? else { return Ok(Properties { description: None, searchable: None, propagating: None }) };
    let propagating = match p.obj("mqtt5Configuration")? {
        None => None,
        Some(m) => Some(
            m.objs("propagatingAttributes")?
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    Ok(PropagatingAttribute {
                        user_property_key: a.str("userPropertyKey")?,
                        thing_attribute: a.str("thingAttribute")?,
                        connection_attribute: a.str("connectionAttribute")?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
    };
    Ok(Properties { description: p.str("thingTypeDescription")?, searchable: p.strs("searchableAttributes")?, propagating })
}

fn properties_json(t: &ThingType) -> Value {
    let mut p = Map::new();
    if let Some(d) = &t.description {
        p.insert("thingTypeDescription".into(), json!(d));
    }
    p.insert("searchableAttributes".into(), json!(t.searchable_attributes));
    if let Some(list) = &t.propagating_attributes {
        let items: Vec<Value> = list
            .iter()
            .map(|a| {
                let mut m = Map::new();
                for (k, v) in
                    [("userPropertyKey", &a.user_property_key), ("thingAttribute", &a.thing_attribute), ("connectionAttribute", &a.connection_attribute)]
                {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                Value::Object(m)
            })
            .collect();
        p.insert("mqtt5Configuration".into(), json!({ "propagatingAttributes": items }));
    }
    Value::Object(p)
}

fn metadata_json(t: &ThingType) -> Value {
    let mut m = json!({"deprecated": t.deprecated, "creationDate": secs(t.created_ms)});
    if let Some(d) = t.deprecated_ms {
        m["deprecationDate"] = secs(d);
    }
    m
}

impl Inner {
    fn type_arn(&self, name: &str) -> String {
        self.registry.arn(ResourceKind::ThingType, name)
    }

    pub(super) fn create_thing_type(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let p = properties(&body)?;
        let t = self.registry.create_thing_type(NewThingType {
            name: req.input().required("thingTypeName")?.to_string(),
            description: p.description,
            searchable_attributes: p.searchable.unwrap_or_default(),
            propagating_attributes: p.propagating,
            tags: body.tags("tags")?,
        })?;
        ApiResponse::json(json!({"thingTypeName": t.name, "thingTypeArn": self.type_arn(&t.name), "thingTypeId": t.id}))
    }

    pub(super) fn describe_thing_type(&self, req: &ApiRequest) -> Reply {
        let t = self.registry.describe_thing_type(req.input().required("thingTypeName")?)?;
        ApiResponse::json(json!({
            "thingTypeName": t.name,
            "thingTypeId": t.id,
            "thingTypeArn": self.type_arn(&t.name),
            "thingTypeProperties": properties_json(&t),
            "thingTypeMetadata": metadata_json(&t),
        }))
    }

    pub(super) fn list_thing_types(&self, req: &ApiRequest) -> Reply {
        let (after, limit) = paging(req)?;
        let page = self.registry.list_thing_types(req.input().text("thingTypeName")?, after.as_deref(), limit)?;
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|t| {
                json!({
                    "thingTypeName": t.name,
                    "thingTypeArn": self.type_arn(&t.name),
                    "thingTypeProperties": properties_json(t),
                    "thingTypeMetadata": metadata_json(t),
                })
            })
            .collect();
        ApiResponse::json(with_token(json!({ "thingTypes": items }), &page))
    }

    pub(super) fn update_thing_type(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let p = properties(&body)?;
        self.registry.update_thing_type(ThingTypeUpdate {
            name: req.input().required("thingTypeName")?.to_string(),
            description: p.description,
            searchable_attributes: p.searchable,
            propagating_attributes: p.propagating,
        })?;
        done()
    }

    pub(super) fn deprecate_thing_type(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        self.registry.deprecate_thing_type(req.input().required("thingTypeName")?, body.bool("undoDeprecate")?)?;
        done()
    }

    pub(super) fn delete_thing_type(&self, req: &ApiRequest) -> Reply {
        self.registry.delete_thing_type(req.input().required("thingTypeName")?)?;
        done()
    }
}
