//! Reading and validating request payloads: encoding, JSON, `clientToken`, `version`, `state`.

use serde_json::{Map, Value};

use crate::json::{depth, has_null_in_array};
use crate::{Limits, Rejection, ShadowError};

/// What an update request asks for, once validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpdateRequest {
    pub client_token: Option<String>,
    pub version: Option<u64>,
    pub state: StateRequest,
}

/// The request's `state` node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StateRequest {
    /// `"state": null`: clear the whole state.
    Clear,
    /// `"state": {...}`: each section absent (`None`), `null` (delete it) or an object (merge).
    Sections {
        desired: Option<Value>,
        reported: Option<Value>,
    },
}

/// What a get or delete request carries (its payload is usually empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PlainRequest {
    pub client_token: Option<String>,
    pub version: Option<u64>,
}

/// A rejection of a request in progress: the token is known once it has been read.
fn reject(error: ShadowError, now: u64, token: &Option<String>) -> Rejection {
    Rejection::new(error, now, token.clone())
}

/// Checks size and encoding and parses the payload as a JSON object.
fn parse_object(bytes: &[u8], now: u64, limits: &Limits) -> Result<Map<String, Value>, Rejection> {
    if bytes.len() > limits.max_request_bytes {
        return Err(reject(ShadowError::PayloadTooLarge, now, &None));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(reject(ShadowError::UnsupportedEncoding, now, &None));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(doc)) => Ok(doc),
        Ok(_) => Err(reject(ShadowError::InvalidJson, now, &None)),
        // serde_json refuses more than 128 levels; that is too deep whatever the limit.
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            Err(reject(ShadowError::TooDeep { max: limits.max_depth }, now, &None))
        }
        Err(_) => Err(reject(ShadowError::InvalidJson, now, &None)),
    }
}

/// The `clientToken`: absent or `null` is none; otherwise a string of at most the limit.
fn client_token(doc: &Map<String, Value>, now: u64, limits: &Limits) -> Result<Option<String>, Rejection> {
    match doc.get("clientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if t.len() <= limits.max_client_token_bytes => Ok(Some(t.clone())),
        Some(_) => Err(reject(ShadowError::InvalidClientToken, now, &None)),
    }
}

/// The `version`: absent or `null` is none; otherwise a non-negative integer.
fn version(doc: &Map<String, Value>, now: u64, token: &Option<String>) -> Result<Option<u64>, Rejection> {
    match doc.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => Err(reject(ShadowError::InvalidVersion, now, token)),
        },
        Some(_) => Err(reject(ShadowError::InvalidVersion, now, token)),
    }
}

/// Reads an update request, checking everything that does not depend on the stored shadow.
pub(crate) fn parse_update(bytes: &[u8], now: u64, limits: &Limits) -> Result<UpdateRequest, Rejection> {
    let mut doc = parse_object(bytes, now, limits)?;
    let client_token = client_token(&doc, now, limits)?;
    let version = version(&doc, now, &client_token)?;
    let fail = |error| Err(reject(error, now, &client_token));
    let state = match doc.remove("state") {
        None => return fail(ShadowError::MissingState),
        Some(Value::Null) => StateRequest::Clear,
        Some(Value::Object(mut sections)) => {
            let desired = sections.remove("desired");
            let reported = sections.remove("reported");
            if matches!(&desired, Some(v) if !v.is_object() && !v.is_null()) {
                return fail(ShadowError::DesiredNotObject);
            }
            if matches!(&reported, Some(v) if !v.is_object() && !v.is_null()) {
                return fail(ShadowError::ReportedNotObject);
            }
            if !sections.is_empty() {
                return fail(ShadowError::InvalidNode);
            }
            for section in desired.iter().chain(reported.iter()) {
                if depth(section) > limits.max_depth {
                    return fail(ShadowError::TooDeep { max: limits.max_depth });
                }
                if has_null_in_array(section) {
                    return fail(ShadowError::InvalidNode);
                }
            }
            StateRequest::Sections { desired, reported }
        }
        Some(_) => return fail(ShadowError::StateNotObject),
    };
    Ok(UpdateRequest {
        client_token,
        version,
        state,
    })
}

/// Reads a get or delete request: an empty payload, or a JSON object whose `clientToken` (and
/// `version`, for delete) count. When `lenient`, a payload that is not a JSON object is ignored
/// (AWS: "the content of the message is ignored" for delete); otherwise it is rejected.
pub(crate) fn parse_plain(bytes: &[u8], now: u64, limits: &Limits, lenient: bool) -> Result<PlainRequest, Rejection> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(PlainRequest::default());
    }
    let doc = match parse_object(bytes, now, limits) {
        Ok(doc) => doc,
        Err(_) if lenient => return Ok(PlainRequest::default()),
        Err(rejection) => return Err(rejection),
    };
    let client_token = client_token(&doc, now, limits)?;
    let version = version(&doc, now, &client_token)?;
    Ok(PlainRequest { client_token, version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(bytes: &[u8]) -> (ShadowError, Option<String>) {
        let r = parse_update(bytes, 1, &Limits::default()).expect_err("should be rejected");
        assert_eq!(r.timestamp, 1);
        (r.error, r.client_token)
    }

    #[test]
    fn update_rejections() {
        use ShadowError::*;
        let long_token = format!(r#"{{"clientToken":"{}","state":{{}}}}"#, "t".repeat(65));
        let cases: Vec<(&[u8], ShadowError, Option<&str>)> = vec![
            (b"", InvalidJson, None),
            (b"not json", InvalidJson, None),
            (b"{\"state\":", InvalidJson, None),
            (b"[1,2]", InvalidJson, None),
            (b"\"state\"", InvalidJson, None),
            (b"null", InvalidJson, None),
            (b"{\"state\":{}} trailing", InvalidJson, None),
            (b"{\"state\":{\"desired\":{\"a\":\"\xff\"}}}", UnsupportedEncoding, None),
            (b"{}", MissingState, None),
            (br#"{"clientToken":"ct","desired":{"a":1}}"#, MissingState, Some("ct")),
            (br#"{"clientToken":"ct","state":1}"#, StateNotObject, Some("ct")),
            (br#"{"state":"on"}"#, StateNotObject, None),
            (br#"{"state":[{"desired":{}}]}"#, StateNotObject, None),
            (br#"{"state":{"desired":1}}"#, DesiredNotObject, None),
            (br#"{"state":{"desired":[1]}}"#, DesiredNotObject, None),
            (br#"{"state":{"desired":"x"}}"#, DesiredNotObject, None),
            (br#"{"state":{"reported":true}}"#, ReportedNotObject, None),
            (br#"{"state":{"reported":[]}}"#, ReportedNotObject, None),
            (br#"{"state":{},"version":-1}"#, InvalidVersion, None),
            (br#"{"state":{},"version":1.5}"#, InvalidVersion, None),
            (
                br#"{"state":{},"version":"3","clientToken":"ct"}"#,
                InvalidVersion,
                Some("ct"),
            ),
            (br#"{"state":{},"clientToken":5}"#, InvalidClientToken, None),
            (br#"{"state":{},"clientToken":{"a":1}}"#, InvalidClientToken, None),
            (long_token.as_bytes(), InvalidClientToken, None),
            (br#"{"state":{"delta":{"a":1}}}"#, InvalidNode, None),
            (br#"{"state":{"desired":{},"metadata":{}}}"#, InvalidNode, None),
            (
                br#"{"state":{"desired":{"colors":[null,"RED","GREEN"]}}}"#,
                InvalidNode,
                None,
            ),
            (br#"{"state":{"reported":{"a":[[null]]}}}"#, InvalidNode, None),
            (
                br#"{"state":{"desired":{"1":{"2":{"3":{"4":{"5":{"6":{}}}}}}}}}"#,
                TooDeep { max: 6 },
                None,
            ),
            (
                br#"{"state":{"reported":{"1":{"2":{"3":{"4":{"5":[[1]]}}}}}}}"#,
                TooDeep { max: 6 },
                None,
            ),
        ];
        for (bytes, want, token) in cases {
            assert_eq!(
                err(bytes),
                (want, token.map(String::from)),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn serde_recursion_limit_is_too_deep() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let body = format!(r#"{{"state":{{"desired":{{"a":{deep}}}}}}}"#);
        assert_eq!(err(body.as_bytes()).0, ShadowError::TooDeep { max: 6 });
    }

    #[test]
    fn oversized_request_is_413() {
        let limits = Limits {
            max_request_bytes: 12,
            ..Limits::default()
        };
        let r = parse_update(br#"{"state":{ }}"#, 3, &limits).unwrap_err();
        assert_eq!((r.error, r.client_token), (ShadowError::PayloadTooLarge, None));
        assert!(parse_update(br#"{"state":{}}"#, 3, &limits).is_ok());
    }

    #[test]
    fn accepted_forms() {
        let l = Limits::default();
        let max_token = "t".repeat(64);
        let body = format!(r#"{{"state":null,"clientToken":"{max_token}","version":0,"other":[null]}}"#);
        assert_eq!(
            parse_update(body.as_bytes(), 1, &l).unwrap(),
            UpdateRequest {
                client_token: Some(max_token),
                version: Some(0),
                state: StateRequest::Clear
            }
        );
        let r = parse_update(
            br#"{"state":{"desired":null,"reported":{"a":{"b":null}}},"clientToken":null,"version":null}"#,
            1,
            &l,
        )
        .unwrap();
        assert_eq!(
            r,
            UpdateRequest {
                client_token: None,
                version: None,
                state: StateRequest::Sections {
                    desired: Some(Value::Null),
                    reported: Some(json!({"a": {"b": null}}))
                }
            }
        );
        // Exactly at the depth limit: the section object and five levels below it.
        let ok = br#"{"state":{"desired":{"one":{"two":{"three":{"four":{"five":{}}}}}}}}"#;
        assert!(parse_update(ok, 1, &l).is_ok());
        let r = parse_update(br#"{"state":{},"version":18446744073709551615}"#, 1, &l).unwrap();
        assert_eq!(r.version, Some(u64::MAX));
    }

    #[test]
    fn depth_limit_is_configurable() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        assert!(parse_update(br#"{"state":{"desired":{"a":{"b":1}}}}"#, 1, &limits).is_ok());
        let r = parse_update(br#"{"state":{"desired":{"a":{"b":{}}}}}"#, 1, &limits).unwrap_err();
        assert_eq!(
            r.error.to_string(),
            "JSON contains too many levels of nesting; maximum is 2"
        );
    }

    #[test]
    fn plain_requests() {
        let l = Limits::default();
        assert_eq!(parse_plain(b"", 1, &l, false).unwrap(), PlainRequest::default());
        assert_eq!(parse_plain(b" \n", 1, &l, false).unwrap(), PlainRequest::default());
        assert_eq!(
            parse_plain(br#"{"clientToken":"x","version":3}"#, 1, &l, false).unwrap(),
            PlainRequest {
                client_token: Some("x".into()),
                version: Some(3)
            }
        );
        assert_eq!(
            parse_plain(b"garbage", 1, &l, false).unwrap_err().error,
            ShadowError::InvalidJson
        );
        assert_eq!(
            parse_plain(b"\xff", 1, &l, false).unwrap_err().error,
            ShadowError::UnsupportedEncoding
        );
        assert_eq!(parse_plain(b"garbage", 1, &l, true).unwrap(), PlainRequest::default());
        assert_eq!(parse_plain(b"\xff", 1, &l, true).unwrap(), PlainRequest::default());
        let r = parse_plain(br#"{"clientToken":"x","version":"2"}"#, 1, &l, true).unwrap_err();
        assert_eq!(
            (r.error, r.client_token),
            (ShadowError::InvalidVersion, Some("x".into()))
        );
        assert_eq!(
            parse_plain(br#"{"clientToken":7}"#, 1, &l, true).unwrap_err().error,
            ShadowError::InvalidClientToken
        );
    }
}
