//! Tags on thing groups, thing types and billing groups, addressed by ARN (TagResource,
//! UntagResource, ListTagsForResource). Things themselves cannot be tagged.

use crate::error::{Result, invalid, not_found};
use crate::model::Tags;
use crate::state::{Change, State};
use crate::{Registry, ResourceKind};

impl Registry {
    /// The taggable resource an ARN names: InvalidRequest when it is not an ARN of a taggable
    /// registry resource, ResourceNotFound when there is no such resource here.
    fn taggable(&self, st: &State, arn: &str) -> Result<(ResourceKind, String)> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [scheme, _partition, service, region, account, resource] = parts[..] else {
            return invalid(format!("{arn} is not a valid resource ARN."));
        };
        if scheme != "arn" || service != "iot" {
            return invalid(format!("{arn} is not a valid AWS IoT resource ARN."));
        }
        let Some((ty, name)) = resource.split_once('/').filter(|(_, n)| !n.is_empty()) else {
            return invalid(format!("{arn} is not a valid AWS IoT resource ARN."));
        };
        let kind = match ty {
            "thinggroup" => ResourceKind::ThingGroup,
            "thingtype" => ResourceKind::ThingType,
            "billinggroup" => ResourceKind::BillingGroup,
            "thing" => return invalid(format!("Things cannot be tagged ({arn}); tag a billing group or a thing group instead.")),
            _ => return invalid(format!("Resources of type {ty} ({arn}) cannot be tagged here.")),
        };
        let missing = || not_found(format!("The resource {arn} cannot be found."));
        if region != self.config.region || account != self.config.account_id {
            return Err(missing());
        }
        let exists = match kind {
            ResourceKind::ThingGroup => st.groups.contains_key(name),
            ResourceKind::ThingType => st.types.contains_key(name),
            ResourceKind::BillingGroup => st.billing.contains_key(name),
            ResourceKind::Thing => false,
        };
        if !exists {
            return Err(missing());
        }
        Ok((kind, name.to_string()))
    }

    fn tags_of<'a>(st: &'a State, kind: ResourceKind, name: &str) -> Option<&'a Tags> {
        match kind {
            ResourceKind::ThingGroup => st.groups.get(name).map(|g| &g.tags),
            ResourceKind::ThingType => st.types.get(name).map(|t| &t.tags),
            ResourceKind::BillingGroup => st.billing.get(name).map(|b| &b.tags),
            ResourceKind::Thing => None,
        }
    }

    fn with_tags(st: &State, kind: ResourceKind, name: &str, tags: Tags) -> Option<Change> {
        match kind {
            ResourceKind::ThingGroup => st.groups.get(name).map(|g| Change::Group(crate::ThingGroup { tags, ..g.clone() })),
            ResourceKind::ThingType => st.types.get(name).map(|t| Change::Type(crate::ThingType { tags, ..t.clone() })),
            ResourceKind::BillingGroup => st.billing.get(name).map(|b| Change::Billing(crate::BillingGroup { tags, ..b.clone() })),
            ResourceKind::Thing => None,
        }
    }

    /// ListTagsForResource.
    pub fn list_tags(&self, arn: &str) -> Result<Tags> {
        let st = self.read();
        let (kind, name) = self.taggable(&st, arn)?;
        Ok(Self::tags_of(&st, kind, &name).cloned().unwrap_or_default())
    }

    /// TagResource: adds or overwrites tags (at most 50 per resource).
    pub fn tag_resource(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        awscore::tags::check(tags)?;
        let mut st = self.lock()?;
        let (kind, name) = self.taggable(&st, arn)?;
        let all = awscore::tags::tag(Self::tags_of(&st, kind, &name).unwrap_or(&Tags::new()), tags, arn)?;
        let Some(change) = Self::with_tags(&st, kind, &name, all) else { return Err(not_found(format!("The resource {arn} cannot be found."))) };
        self.commit(&mut st, vec![change], Vec::new())
    }

    /// UntagResource: removes tags by key (keys the resource lacks are ignored).
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        let mut st = self.lock()?;
        let (kind, name) = self.taggable(&st, arn)?;
        let all = awscore::tags::untag(Self::tags_of(&st, kind, &name).unwrap_or(&Tags::new()), keys)?;
        let Some(change) = Self::with_tags(&st, kind, &name, all) else { return Err(not_found(format!("The resource {arn} cannot be found."))) };
        self.commit(&mut st, vec![change], Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    #[test]
    fn tags_by_arn_with_aws_errors() {
        let f = fixture(0);
        let r = &f.registry;
        let g = f.group("g", None);
        let arn = r.arn(ResourceKind::ThingGroup, &g.name);
        r.tag_resource(&arn, &[("env".into(), "prod".into()), ("team".into(), "".into())]).unwrap();
        r.tag_resource(&arn, &[("env".into(), "dev".into())]).unwrap();
        let tags = r.list_tags(&arn).unwrap();
        assert_eq!(tags.get("env").map(String::as_str), Some("dev"));
        assert_eq!(tags.get("team").map(String::as_str), Some(""));
        r.untag_resource(&arn, &["team".into(), "absent".into()]).unwrap();
        assert_eq!(r.list_tags(&arn).unwrap().len(), 1);
        assert!(matches!(r.list_tags("nonsense"), Err(RegistryError::Invalid(_))));
        assert!(matches!(r.list_tags(&r.arn(ResourceKind::Thing, "t")), Err(RegistryError::Invalid(_))));
        assert!(matches!(r.list_tags(&r.arn(ResourceKind::BillingGroup, "none")), Err(RegistryError::NotFound(_))));
        let many: Vec<(String, String)> = (0..50).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(matches!(r.tag_resource(&arn, &many), Err(RegistryError::LimitExceeded(_))));
        assert!(f.reopen().list_tags(&arn).unwrap().contains_key("env"));
    }
}
