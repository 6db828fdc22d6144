//! Tags on policies, CA certificates and custom authorizers, addressed by ARN (the authz side
//! of TagResource, UntagResource, ListTagsForResource).

use crate::error::{AuthzError, Result, not_found};
use crate::state::{Change, State};
use crate::Authz;
use awscore::tags::{TagError, Tags};

/// The kinds of authz resources that carry tags (the ARN's resource type).
pub const TAGGABLE: [&str; 3] = ["policy", "cacert", "authorizer"];

impl From<TagError> for AuthzError {
    fn from(e: TagError) -> AuthzError {
        match e {
            TagError::Invalid(m) => AuthzError::Invalid(m),
            TagError::Limit(m) => AuthzError::LimitExceeded(m),
        }
    }
}

impl Authz {
    /// The resource an ARN names: its tags, and the change that gives it new ones.
    fn tagged(&self, st: &State, arn: &str) -> Result<(Tags, Box<dyn FnOnce(Tags) -> Change>)> {
        let missing = || not_found(format!("The resource {arn} cannot be found."));
        let a = awscore::Arn::parse(arn).map_err(|e| AuthzError::Invalid(e.to_string()))?;
        if a.region != self.config.region || a.account != self.config.account_id {
            return Err(missing());
        }
        let Some((ty, id)) = a.resource_parts() else { return Err(AuthzError::Invalid(format!("{arn} is not a valid AWS IoT resource ARN."))) };
        match ty {
            "policy" => {
                let p = st.policies.get(id).ok_or_else(missing)?.clone();
                Ok((p.tags.clone(), Box::new(move |tags| Change::Policy(crate::state::Policy { tags, ..p }))))
            }
            "cacert" => {
                let c = st.cas.get(id).ok_or_else(missing)?.clone();
                Ok((c.tags.clone(), Box::new(move |tags| Change::Ca(crate::state::CaCertificate { tags, ..c }))))
            }
            "authorizer" => {
                let z = st.authorizers.get(id).ok_or_else(missing)?.clone();
                Ok((z.tags.clone(), Box::new(move |tags| Change::Authorizer(crate::Authorizer { tags, ..z }))))
            }
            _ => Err(AuthzError::Invalid(format!("Resources of type {ty} ({arn}) cannot be tagged here."))),
        }
    }

    /// ListTagsForResource.
    pub fn list_tags(&self, arn: &str) -> Result<Tags> {
        Ok(self.tagged(&self.read(), arn)?.0)
    }

    /// TagResource: adds or overwrites tags (at most 50 per resource).
    pub fn tag_resource(&self, arn: &str, add: &[(String, String)]) -> Result<()> {
        let mut st = self.lock()?;
        let (tags, change) = self.tagged(&st, arn)?;
        let tags = awscore::tags::tag(&tags, add, arn)?;
        self.commit(&mut st, vec![change(tags)])
    }

    /// UntagResource: removes tags by key (keys the resource lacks are ignored).
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<()> {
        let mut st = self.lock()?;
        let (tags, change) = self.tagged(&st, arn)?;
        let tags = awscore::tags::untag(&tags, keys)?;
        self.commit(&mut st, vec![change(tags)])
    }
}
