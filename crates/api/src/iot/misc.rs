//! Tags by ARN (TagResource, UntagResource, ListTagsForResource), DescribeEndpoint, and the
//! event configuration (UpdateEventConfigurations, DescribeEventConfigurations).

use super::{Inner, done, secs, tag_list};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The endpoint types DescribeEndpoint knows. Ferrite serves all of them at the one configured
/// host, so each answers it.
const ENDPOINT_TYPES: [&str; 4] = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"];

impl Inner {
    pub(super) fn tag_resource(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let arn = body.str("resourceArn")?.ok_or_else(|| ApiError::invalid("resourceArn is required"))?;
        if body.objs("tags")?.is_none() {
            return Err(ApiError::invalid("tags is required"));
        }
        self.registry.tag_resource(&arn, &body.tags("tags")?)?;
        done()
    }

    pub(super) fn untag_resource(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let arn = body.str("resourceArn")?.ok_or_else(|| ApiError::invalid("resourceArn is required"))?;
        let keys = body.strs("tagKeys")?.ok_or_else(|| ApiError::invalid("tagKeys is required"))?;
        self.registry.untag_resource(&arn, &keys)?;
        done()
    }

    pub(super) fn list_tags_for_resource(&self, req: &ApiRequest) -> Reply {
        let arn = req.input().text("resourceArn")?.ok_or_else(|| ApiError::invalid("resourceArn is required"))?;
        // At most 50 tags per resource: always one page.
        let tags = self.registry.list_tags(arn)?;
        ApiResponse::json(json!({ "tags": tag_list(&tags) }))
    }

    pub(super) fn describe_endpoint(&self, req: &ApiRequest) -> Reply {
        if let Some(t) = req.input().text("endpointType")?
            && !ENDPOINT_TYPES.iter().any(|k| k.eq_ignore_ascii_case(t))
        {
            return Err(ApiError::invalid(format!("Endpoint type {t} not recognized; valid types are {}.", ENDPOINT_TYPES.join(", "))));
        }
        ApiResponse::json(json!({ "endpointAddress": self.endpoint_host }))
    }

    pub(super) fn update_event_configurations(&self, req: &ApiRequest) -> Reply {
        let body = req.input();
        let mut changes = BTreeMap::new();
        if let Some(configs) = body.obj("eventConfigurations")? {
            for key in configs.keys() {
                let c = configs.obj(key)?.ok_or_else(|| ApiError::invalid(format!("eventConfigurations.{key} must be an object")))?;
                changes.insert(key.to_string(), c.bool("Enabled")?);
            }
        }
        self.registry.update_event_configurations(&changes)?;
        done()
    }

    pub(super) fn describe_event_configurations(&self) -> Reply {
        let c = self.registry.event_configurations();
        let configs: Map<String, Value> = c.enabled.iter().map(|(k, v)| (k.clone(), json!({ "Enabled": v }))).collect();
        ApiResponse::json(json!({
            "eventConfigurations": configs,
            "creationDate": secs(c.created_ms),
            "lastModifiedDate": secs(c.modified_ms),
        }))
    }
}
