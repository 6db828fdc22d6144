//! A handler's view of its input: the members [`awsmodel::bind`] merged from the path, query,
//! headers and body by member name and validated against the operation's input shape, read with
//! their types. A read of the wrong type (which validation rules out) is an error naming the
//! member, never a panic; `null` is absent.

use crate::ApiError;
use crate::service::ApiRequest;
use registry::AttributePayload;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A structure of the input: the whole input or one of its members.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    members: &'a Map<String, Value>,
}

impl ApiRequest {
    /// The validated input.
    pub fn input(&self) -> Input<'_> {
        Input { members: &self.members }
    }
}

fn wrong(key: &str, what: &str) -> ApiError {
    ApiError::invalid(format!("{key} must be {what}"))
}

impl<'a> Input<'a> {
    /// A structure given as JSON (tests, nested reads).
    pub fn of(members: &'a Map<String, Value>) -> Input<'a> {
        Input { members }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.members.get(key).filter(|v| !v.is_null())
    }

    /// The member names.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.members.keys().map(String::as_str)
    }

    /// A member as JSON (a document the domain crate reads itself).
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    /// A required member as JSON.
    pub fn required_value(&self, key: &str) -> Result<&'a Value, ApiError> {
        self.get(key).ok_or_else(|| ApiError::invalid(format!("{key} is required")))
    }

    /// A string member.
    pub fn text(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(wrong(key, "a string")),
        }
    }

    /// A string member, owned.
    pub fn str(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self.text(key)?.map(str::to_string))
    }

    /// A required string member.
    pub fn required(&self, key: &str) -> Result<&'a str, ApiError> {
        self.text(key)?.ok_or_else(|| ApiError::invalid(format!("{key} is required")))
    }

    /// A boolean member (absent: false).
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self.opt_bool(key)?.unwrap_or(false))
    }

    /// A boolean member that may be absent.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(key, "a boolean")),
        }
    }

    /// An integer member.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| wrong(key, "an integer")),
        }
    }

    /// An integer member within `min..=max` (Ferrite's bound where it is tighter than the
    /// model's), absent = `default`.
    pub fn int_in(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.i64(key)? {
            None => Ok(default),
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid(format!("{key} must be an integer from {min} to {max}, not {n}"))),
        }
    }

    /// A structure member.
    pub fn obj(&self, key: &str) -> Result<Option<Input<'a>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input { members: m })),
            Some(_) => Err(wrong(key, "an object")),
        }
    }

    /// A list-of-structures member.
    pub fn objs(&self, key: &str) -> Result<Option<Vec<Input<'a>>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Input { members: m }),
                    _ => Err(wrong(key, "a list of objects")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong(key, "a list")),
        }
    }

    /// A list-of-strings member.
    pub fn strs(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| wrong(key, "a list of strings")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong(key, "a list of strings")),
        }
    }

    /// A string-to-string map member.
    pub fn str_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| wrong(key, "a map of strings to strings")))
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(_) => Err(wrong(key, "a map of strings to strings")),
        }
    }

    /// An AttributePayload member (`attributes`, `merge`).
    pub fn attribute_payload(&self, key: &str) -> Result<Option<AttributePayload>, ApiError> {
        let Some(p) = self.obj(key)? else { return Ok(None) };
        Ok(Some(AttributePayload { attributes: p.str_map("attributes")?, merge: p.bool("merge")? }))
    }

    /// A TagList member (`[{"Key": ..., "Value": ...}]`; a missing value is the empty string).
    pub fn tags(&self, key: &str) -> Result<Vec<(String, String)>, ApiError> {
        let Some(items) = self.objs(key)? else { return Ok(Vec::new()) };
        items.iter().map(|t| Ok((t.required("Key")?.to_string(), t.str("Value")?.unwrap_or_default()))).collect()
    }

    /// A page request: the key its token (member `token`) continues after and its size
    /// (member `size`, 1 to `max`, `max` when absent).
    pub fn page(&self, size: &str, token: &str, max: i64) -> Result<(Option<String>, usize), ApiError> {
        let n = self.int_in(size, max, 1, max)? as usize;
        Ok((crate::pagination::after(self.text(token)?)?, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_are_typed_and_name_the_member() {
        let v = json!({"a": "x", "n": 3, "b": true, "o": {"attributes": {"k": "v"}}, "t": [{"Key": "k"}], "z": null});
        let i = Input::of(v.as_object().unwrap());
        assert_eq!((i.text("a").unwrap(), i.i64("n").unwrap(), i.bool("b").unwrap()), (Some("x"), Some(3), true));
        assert_eq!(i.text("z").unwrap(), None);
        assert_eq!(i.required("n").unwrap_err().message, "n must be a string");
        assert_eq!(i.required("missing").unwrap_err().message, "missing is required");
        assert_eq!(i.int_in("n", 1, 1, 2).unwrap_err().message, "n must be an integer from 1 to 2, not 3");
        assert_eq!(i.attribute_payload("o").unwrap().unwrap().attributes.unwrap()["k"], "v");
        assert_eq!(i.tags("t").unwrap(), vec![("k".to_string(), String::new())]);
        assert_eq!(i.page("size", "token", 250).unwrap(), (None, 250));
    }
}
