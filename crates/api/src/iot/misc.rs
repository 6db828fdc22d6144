//! Tags by ARN (TagResource, UntagResource, ListTagsForResource: the registry's groups and
//! types, authz's policies, CA certificates and authorizers, the rules engine's rules), DescribeEndpoint, and the
//! event configuration (UpdateEventConfigurations, DescribeEventConfigurations).

use super::{Inner, done, secs, tag_list};
use crate::ApiError;
use crate::service::{ApiRequest, ApiResponse, Reply};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Who keeps a resource's tags.
enum TagOwner<'a> {
    Registry,
    Authz,
    Rules(&'a rules::Rules),
}

/// The endpoint types DescribeEndpoint knows. Ferrite serves all of them at the one configured
/// host, so each answers it.
const ENDPOINT_TYPES: [&str; 4] = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"];

impl Inner {
    /// The service that keeps the tags of the resource an ARN names (by its resource type).
    fn tag_owner(&self, arn: &str) -> Result<TagOwner<'_>, ApiError> {
        // Only an IoT ARN names a resource of another owner; the registry refuses the rest.
        let ty = awscore::Arn::parse(arn)
            .ok()
            .filter(|a| a.service == "iot")
            .and_then(|a| a.resource_parts().map(|(t, _)| t.to_string()))
            .unwrap_or_default();
        Ok(match ty.as_str() {
            t if authz::TAGGABLE.contains(&t) => TagOwner::Authz,
            "rule" => TagOwner::Rules(self.rules.as_deref().ok_or_else(|| ApiError::invalid("The rules engine is not running here; rules cannot be tagged."))?),
            // The registry's resources, and the errors for every other ARN.
            _ => TagOwner::Registry,
        })
    }

    pub(super) fn tag_resource(&self, req: &ApiRequest) -> Reply {
        let i = req.input();
        let (arn, tags) = (i.required("resourceArn")?, i.tags("tags")?);
        match self.tag_owner(arn)? {
            TagOwner::Registry => self.registry.tag_resource(arn, &tags)?,
            TagOwner::Authz => self.authz.tag_resource(arn, &tags)?,
            TagOwner::Rules(r) => r.tag_resource(arn, &tags)?,
        }
        done()
    }

    pub(super) fn untag_resource(&self, req: &ApiRequest) -> Reply {
        let i = req.input();
        let (arn, keys) = (i.required("resourceArn")?, i.strs("tagKeys")?.unwrap_or_default());
        match self.tag_owner(arn)? {
            TagOwner::Registry => self.registry.untag_resource(arn, &keys)?,
            TagOwner::Authz => self.authz.untag_resource(arn, &keys)?,
            TagOwner::Rules(r) => r.untag_resource(arn, &keys)?,
        }
        done()
    }

    pub(super) fn list_tags_for_resource(&self, req: &ApiRequest) -> Reply {
        let arn = req.input().required("resourceArn")?;
        // At most 50 tags per resource: always one page.
        let tags = match self.tag_owner(arn)? {
            TagOwner::Registry => self.registry.list_tags(arn)?,
            TagOwner::Authz => self.authz.list_tags(arn)?,
            TagOwner::Rules(r) => r.list_tags(arn)?,
        };
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
