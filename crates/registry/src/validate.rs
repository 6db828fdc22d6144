//! Input rules from the AWS IoT model and developer guide: name patterns and lengths, attribute
//! names and values, descriptions, tags, principals. Failures read like AWS's validation
//! messages and name the bad value and the member it was given for.

use crate::error::{RegistryError, Result, invalid};
use std::collections::BTreeMap;

/// Longest thing, thing type, thing group or billing group name.
pub const MAX_NAME: usize = 128;
/// Longest attribute name.
pub const MAX_ATTRIBUTE_NAME: usize = 128;
/// Longest attribute value.
pub const MAX_ATTRIBUTE_VALUE: usize = 800;
/// Longest description of a thing type, thing group or billing group.
pub const MAX_DESCRIPTION: usize = 2028;
pub use awscore::tags::MAX_TAGS;
/// Attributes of a thing without a thing type (developer guide, "Thing types").
pub const MAX_UNTYPED_THING_ATTRIBUTES: usize = 3;
/// Attributes of a thing with a thing type.
pub const MAX_TYPED_THING_ATTRIBUTES: usize = 50;
/// Attributes of a thing group (developer guide, "Thing groups").
pub const MAX_GROUP_ATTRIBUTES: usize = 50;
/// Searchable attributes of a thing type.
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;
/// Longest principal (certificate ARN or Amazon Cognito identity) accepted.
pub const MAX_PRINCIPAL: usize = 2048;

fn failed(field: &str, value: &str, constraint: &str) -> Result<()> {
    invalid(format!("1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"))
}

fn length(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min {
        return failed(field, value, &format!("Member must have length greater than or equal to {min}"));
    }
    if n > max {
        return failed(field, value, &format!("Member must have length less than or equal to {max}"));
    }
    Ok(())
}

fn pattern(field: &str, value: &str, ok: impl Fn(char) -> bool, shown: &str) -> Result<()> {
    if value.chars().all(ok) { Ok(()) } else { failed(field, value, &format!("Member must satisfy regular expression pattern: {shown}")) }
}

/// A thing, thing type, thing group or billing group name: `[a-zA-Z0-9:_-]+`, 1 to 128
/// characters. `field` is the request member (`thingName`, `parentGroupName`, ...).
pub fn name(field: &str, value: &str) -> Result<()> {
    length(field, value, 1, MAX_NAME)?;
    pattern(field, value, |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'), "[a-zA-Z0-9:_-]+")
}

fn attribute_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ',' | '@' | '/' | ':' | '#' | '-')
}

/// An attribute name: `[a-zA-Z0-9_.,@/:#-]+`, at most 128 characters.
pub fn attribute_name(field: &str, value: &str) -> Result<()> {
    length(field, value, 1, MAX_ATTRIBUTE_NAME)?;
    pattern(field, value, attribute_name_char, "[a-zA-Z0-9_.,@/:#-]+")
}

/// An attribute value: `[a-zA-Z0-9_.,@/:#=\[\]-]*`, at most 800 characters.
pub fn attribute_value(field: &str, value: &str) -> Result<()> {
    length(field, value, 0, MAX_ATTRIBUTE_VALUE)?;
    pattern(field, value, |c| attribute_name_char(c) || matches!(c, '=' | '[' | ']'), "[a-zA-Z0-9_.,@/:#=\\[\\]-]*")
}

/// Every name and value of an attribute map, and their number.
pub fn attributes(attributes: &BTreeMap<String, String>, max: usize, owner: &str) -> Result<()> {
    for (k, v) in attributes {
        attribute_name("attributePayload.attributes", k)?;
        attribute_value(&format!("attributePayload.attributes.{k}"), v)?;
    }
    if attributes.len() > max {
        return invalid(format!("{owner} can have at most {max} attributes; {} were given.", attributes.len()));
    }
    Ok(())
}

/// A description: printable ASCII and spaces (`[\p{Graph}\x20]*`), at most 2028 characters.
pub fn description(field: &str, value: &str) -> Result<()> {
    length(field, value, 0, MAX_DESCRIPTION)?;
    pattern(field, value, |c| (' '..='~').contains(&c), "[\\p{Graph}\\x20]*")
}

/// Tags given at creation or to TagResource (keys and values; the count is checked against
/// the resource's tags by the caller): [`awscore::tags::check`].
pub fn tags(tags: &[(String, String)]) -> Result<()> {
    awscore::tags::check(tags).map_err(RegistryError::from)
}

/// A principal: a certificate ARN, another IAM/IoT ARN or an Amazon Cognito identity id.
pub fn principal(value: &str) -> Result<()> {
    length("principal", value, 1, MAX_PRINCIPAL)?;
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return failed("principal", value, "Member must not contain whitespace or control characters");
    }
    Ok(())
}

/// An MQTT 5 user property key of a propagating attribute: `[a-zA-Z0-9:$.]+`, at most 128.
pub fn user_property_key(value: &str) -> Result<()> {
    let field = "thingTypeProperties.mqtt5Configuration.propagatingAttributes.member.userPropertyKey";
    length(field, value, 1, 128)?;
    pattern(field, value, |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '$' | '.'), "[a-zA-Z0-9:$.]+")
}

/// A connection attribute of a propagating attribute: `[a-zA-Z0-9:.]+`, at most 128.
pub fn connection_attribute(value: &str) -> Result<()> {
    let field = "thingTypeProperties.mqtt5Configuration.propagatingAttributes.member.connectionAttribute";
    length(field, value, 1, 128)?;
    pattern(field, value, |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.'), "[a-zA-Z0-9:.]+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistryError;

    fn message(r: Result<()>) -> String {
        match r {
            Err(RegistryError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn names_follow_the_model_pattern_and_length() {
        assert!(name("thingName", "a-B_9:x").is_ok());
        assert!(name("thingName", &"a".repeat(128)).is_ok());
        let m = message(name("thingName", &"a".repeat(129)));
        assert!(m.contains("thingName") && m.contains("less than or equal to 128"), "{m}");
        let m = message(name("thingName", "bad name"));
        assert!(m.contains("'bad name'") && m.contains("[a-zA-Z0-9:_-]+"), "{m}");
        assert!(name("thingName", "").is_err());
        assert!(name("thingName", "é").is_err());
    }

    #[test]
    fn attributes_names_values_and_counts() {
        assert!(attribute_name("a", "serial.no/#1@x,y:z-").is_ok());
        assert!(attribute_name("a", "no space").is_err());
        assert!(attribute_value("v", "").is_ok());
        assert!(attribute_value("v", "[a=b]").is_ok());
        assert!(attribute_value("v", "a b").is_err());
        assert!(attribute_value("v", &"x".repeat(801)).is_err());
        let mut m: BTreeMap<String, String> = (0..4).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(attributes(&m, 3, "A thing without a thing type").is_err());
        m.remove("k0");
        assert!(attributes(&m, 3, "A thing without a thing type").is_ok());
    }

    #[test]
    fn descriptions_are_printable_ascii() {
        assert!(description("d", "A light bulb, 75 W (warm) ~!").is_ok());
        assert!(description("d", "tab\there").is_err());
        assert!(description("d", "ünïcode").is_err());
        assert!(description("d", &"x".repeat(2029)).is_err());
    }

    #[test]
    fn tags_allow_unicode_letters_and_refuse_the_aws_prefix() {
        assert!(tags(&[("Équipe 1".into(), "any value at all!".into())]).is_ok());
        assert!(tags(&[("aws:owner".into(), "x".into())]).is_err());
        assert!(tags(&[("bad*key".into(), "x".into())]).is_err());
        assert!(tags(&[("".into(), "x".into())]).is_err());
        assert!(tags(&[("k".into(), "v".repeat(257))]).is_err());
    }

    #[test]
    fn principals_are_non_empty_without_spaces() {
        assert!(principal("arn:aws:iot:us-east-1:123456789012:cert/ab12").is_ok());
        assert!(principal("us-east-1:7e3c2a0e-0000-4000-8000-000000000000").is_ok());
        assert!(principal("").is_err());
        assert!(principal("a b").is_err());
    }
}
