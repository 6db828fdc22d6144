//! Amazon Resource Names: `arn:partition:service:region:account:resource`, built and parsed.

use std::fmt;

/// A parsed ARN. The resource part is kept whole (`thing/t1`, `function:f`, `user/bob`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ARN (arn:partition:service:region:account:resource)")]
pub struct NotAnArn(pub String);

impl Arn {
    /// An ARN in the `aws` partition.
    pub fn new(service: &str, region: &str, account: &str, resource: &str) -> Arn {
        Arn { partition: "aws".into(), service: service.into(), region: region.into(), account: account.into(), resource: resource.into() }
    }

    /// Parses an ARN (the resource may itself contain `:` and `/`).
    pub fn parse(s: &str) -> Result<Arn, NotAnArn> {
        let mut parts = s.splitn(6, ':');
        let bad = || NotAnArn(s.to_string());
        if parts.next() != Some("arn") {
            return Err(bad());
        }
        let (partition, service, region, account, resource) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(bad());
        }
        Ok(Arn { partition: partition.into(), service: service.into(), region: region.into(), account: account.into(), resource: resource.into() })
    }

    /// The resource type and name of a `type/name` or `type:name` resource.
    pub fn resource_parts(&self) -> Option<(&str, &str)> {
        let i = self.resource.find(['/', ':'])?;
        Some((&self.resource[..i], &self.resource[i + 1..]))
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:{}:{}:{}:{}", self.partition, self.service, self.region, self.account, self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn arns_parse_and_print() {
        let a = Arn::parse("arn:aws:iot:us-east-1:123456789012:thing/t1").unwrap();
        assert_eq!((a.service.as_str(), a.resource_parts()), ("iot", Some(("thing", "t1"))));
        let l = Arn::parse("arn:aws:lambda:r:1:function:f:1").unwrap();
        assert_eq!(l.resource_parts(), Some(("function", "f:1")));
        assert_eq!(Arn::new("iam", "", "1", "user/bob").to_string(), "arn:aws:iam::1:user/bob");
        for bad in ["", "arn", "arn:aws:iot", "nope:aws:iot:r:1:x", "arn::iot:r:1:x", "arn:aws:iot:r:1:"] {
            assert!(Arn::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_arn(service in "[a-z0-9-]{1,12}", region in "[a-z0-9-]{0,12}", account in "[0-9]{0,12}", resource in "[ -~]{1,40}") {
            let a = Arn::new(&service, &region, &account, &resource);
            prop_assert_eq!(Arn::parse(&a.to_string()).unwrap(), a);
        }
    }
}
