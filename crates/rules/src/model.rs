//! A topic rule as AWS defines it (`TopicRulePayload`: sql, awsIotSqlVersion, actions,
//! errorAction, ruleDisabled, description) and its compiled form: the parsed statement and, per
//! action, its parsed substitution templates. Compiling is where every problem of a payload is
//! found, so a rule that was accepted can always run.
//!
//! Supported actions: `republish` (topic, qos, MQTT 5 headers), `http` (url, confirmationUrl,
//! headers) and `lambda` (functionArn → a Ferrite function). Any other action is refused with
//! the list of supported ones, rather than accepted and failing on every message.

use crate::RulesError;
use iotsql::{Query, SqlParseError, SqlVersion, Template};
use mqtt::QoS;
use serde_json::{Map, Value};

/// The SQL version of a rule that does not name one (AWS's default outside the console).
pub const DEFAULT_SQL_VERSION: SqlVersion = SqlVersion::V2015_10_08;

/// A template and the text it came from.
#[derive(Debug, Clone)]
pub struct Text {
    pub source: String,
    pub template: Template,
}

impl Text {
    /// Whether the text holds a `${...}` substitution.
    pub fn is_templated(&self) -> bool {
        self.source.contains("${")
    }
}

/// MQTT 5 headers of a republished message.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub payload_format_indicator: Option<Text>,
    pub content_type: Option<Text>,
    pub response_topic: Option<Text>,
    pub correlation_data: Option<Text>,
    pub message_expiry: Option<Text>,
    pub user_properties: Vec<(Text, Text)>,
}

/// One action of a rule.
#[derive(Debug, Clone)]
pub enum Action {
    Republish { topic: Text, qos: QoS, headers: Headers },
    Http { url: Text, confirmation_url: Option<Text>, headers: Vec<(String, Text)> },
    Lambda { function_arn: Text },
}

impl Action {
    /// The name AWS's error payload gives the action (`failedAction`).
    pub fn aws_name(&self) -> &'static str {
        match self {
            Action::Republish { .. } => "RepublishAction",
            Action::Http { .. } => "HttpAction",
            Action::Lambda { .. } => "LambdaAction",
        }
    }

    /// Whether running it may wait on something outside Ferrite (an HTTP server, a function).
    pub fn is_external(&self) -> bool {
        !matches!(self, Action::Republish { .. })
    }

    /// The destination URL an http action with fixed URLs needs (`confirmationUrl`, else `url`).
    pub fn fixed_destination(&self) -> Option<&str> {
        match self {
            Action::Http { url, confirmation_url, .. } => match confirmation_url {
                Some(c) if !c.is_templated() => Some(&c.source),
                None if !url.is_templated() => Some(&url.source),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub name: String,
    pub query: Query,
    pub version: SqlVersion,
    /// The FROM topic filter (None for a Basic-Ingest-only rule).
    pub topic_filter: Option<String>,
    pub actions: Vec<Action>,
    pub error_action: Option<Action>,
    pub disabled: bool,
}

impl CompiledRule {
    /// Whether any action (or the error action) leaves Ferrite's process.
    pub fn has_external_actions(&self) -> bool {
        self.actions.iter().chain(self.error_action.iter()).any(Action::is_external)
    }
}

/// Reads JSON members with AWS's types, naming the member in errors.
struct Obj<'a> {
    m: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn of(v: &'a Value, path: &str) -> Result<Obj<'a>, RulesError> {
        match v {
            Value::Object(m) => Ok(Obj { m, path: path.to_string() }),
            _ => Err(RulesError::Invalid(format!("{path} must be an object"))),
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.m.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, RulesError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RulesError::Invalid(format!("{} must be a string", self.name(key)))),
        }
    }

    fn required(&self, key: &str) -> Result<&'a str, RulesError> {
        self.str(key)?.ok_or_else(|| RulesError::Invalid(format!("{} is required", self.name(key))))
    }

    fn bool(&self, key: &str) -> Result<bool, RulesError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(RulesError::Invalid(format!("{} must be a boolean", self.name(key)))),
        }
    }

    fn list(&self, key: &str) -> Result<Option<&'a Vec<Value>>, RulesError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(RulesError::Invalid(format!("{} must be a list", self.name(key)))),
        }
    }
}

/// The line and column (1-based) of a character offset.
fn line_col(text: &str, position: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for c in text.chars().take(position) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// AWS's SqlParseException for a statement that does not parse: where, and what is wrong.
pub fn sql_parse_error(sql: &str, e: &SqlParseError) -> RulesError {
    let (line, col) = line_col(sql, e.position);
    RulesError::SqlParse(format!("Line {line}:{col} (character {}): {}", e.position, e.message))
}

fn text(src: &str, version: SqlVersion, what: &str) -> Result<Text, RulesError> {
    let template = Template::parse(src, version).map_err(|e| {
        RulesError::Invalid(format!("{what}: the substitution template {src:?} does not parse at character {}: {}", e.position, e.message))
    })?;
    Ok(Text { source: src.to_string(), template })
}

fn opt_text(o: &Obj, key: &str, version: SqlVersion, max: usize) -> Result<Option<Text>, RulesError> {
    match o.str(key)? {
        None => Ok(None),
        Some(s) if s.chars().count() > max => Err(RulesError::Invalid(format!("{} must be at most {max} characters", o.name(key)))),
        Some(s) => text(s, version, &o.name(key)).map(Some),
    }
}

const SUPPORTED: &str = "republish, http and lambda";

/// Compiles one action object (`{"republish": {...}}`).
pub fn compile_action(v: &Value, version: SqlVersion, path: &str) -> Result<Action, RulesError> {
    let o = Obj::of(v, path)?;
    let kinds: Vec<&String> = o.m.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
    let [kind] = kinds.as_slice() else {
        return Err(RulesError::Invalid(format!("{path} must name exactly one action ({SUPPORTED} are supported)")));
    };
    let body = Obj::of(&o.m[kind.as_str()], &o.name(kind))?;
    match kind.as_str() {
        "republish" => {
            body.required("roleArn")?;
            let topic_src = body.required("topic")?;
            let topic = text(topic_src, version, &body.name("topic"))?;
            let qos = match body.get("qos") {
                None => QoS::AtMostOnce,
                Some(q) => match q.as_i64() {
                    Some(0) => QoS::AtMostOnce,
                    Some(1) => QoS::AtLeastOnce,
                    _ => return Err(RulesError::Invalid(format!("{} must be 0 or 1", body.name("qos")))),
                },
            };
            let mut headers = Headers::default();
            if let Some(h) = body.get("headers") {
                let h = Obj::of(h, &body.name("headers"))?;
                headers.payload_format_indicator = opt_text(&h, "payloadFormatIndicator", version, 1024)?;
                headers.content_type = opt_text(&h, "contentType", version, 1024)?;
                headers.response_topic = opt_text(&h, "responseTopic", version, 1024)?;
                headers.correlation_data = opt_text(&h, "correlationData", version, 1024)?;
                headers.message_expiry = opt_text(&h, "messageExpiry", version, 1024)?;
                if let Some(props) = h.list("userProperties")? {
                    if props.is_empty() || props.len() > 100 {
                        return Err(RulesError::Invalid(format!("{} must hold 1 to 100 properties", h.name("userProperties"))));
                    }
                    for (i, p) in props.iter().enumerate() {
                        let p = Obj::of(p, &format!("{}[{i}]", h.name("userProperties")))?;
                        let k = text(p.required("key")?, version, &p.name("key"))?;
                        let v = text(p.required("value")?, version, &p.name("value"))?;
                        headers.user_properties.push((k, v));
                    }
                }
            }
            Ok(Action::Republish { topic, qos, headers })
        }
        "http" => {
            let url_src = body.required("url")?;
            if url_src.len() > 2000 {
                return Err(RulesError::Invalid(format!("{} must be at most 2000 characters", body.name("url"))));
            }
            let url = text(url_src, version, &body.name("url"))?;
            let confirmation_url = opt_text(&body, "confirmationUrl", version, 2000)?;
            check_http_urls(&url, confirmation_url.as_ref(), &body.path)?;
            if body.get("auth").is_some() {
                return Err(RulesError::Invalid(format!("{}: SigV4 authorization of http actions is not supported", body.name("auth"))));
            }
            let mut headers = Vec::new();
            if let Some(list) = body.list("headers")? {
                if list.len() > 100 {
                    return Err(RulesError::Invalid(format!("{} must hold at most 100 headers", body.name("headers"))));
                }
                for (i, h) in list.iter().enumerate() {
                    let h = Obj::of(h, &format!("{}[{i}]", body.name("headers")))?;
                    let key = h.required("key")?;
                    if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                        return Err(RulesError::Invalid(format!("{}: {key:?} is not a valid header name", h.name("key"))));
                    }
                    headers.push((key.to_string(), text(h.required("value")?, version, &h.name("value"))?));
                }
            }
            Ok(Action::Http { url, confirmation_url, headers })
        }
        "lambda" => {
            let arn = body.required("functionArn")?;
            let function_arn = text(arn, version, &body.name("functionArn"))?;
            if !function_arn.is_templated() {
                functions::resolve_name(arn).map_err(|e| RulesError::Invalid(format!("{}: {e}", body.name("functionArn"))))?;
            }
            Ok(Action::Lambda { function_arn })
        }
        other => Err(RulesError::Invalid(format!("{path}: the {other} action is not supported by Ferrite (supported: {SUPPORTED})"))),
    }
}

/// AWS's rules for `url` and `confirmationUrl`: http(s) URLs; a templated url needs a
/// confirmationUrl; a fixed url must begin with a fixed confirmationUrl.
fn check_http_urls(url: &Text, confirmation: Option<&Text>, path: &str) -> Result<(), RulesError> {
    let scheme_ok = |s: &str| s.starts_with("https://") || s.starts_with("http://");
    if !scheme_ok(&url.source) {
        return Err(RulesError::Invalid(format!("{path}.url must be an http:// or https:// URL")));
    }
    if !url.is_templated() {
        functions::http::parse_url(&url.source).map_err(|_| RulesError::Invalid(format!("{path}.url {:?} is not a valid URL", url.source)))?;
    }
    match confirmation {
        None if url.is_templated() => Err(RulesError::Invalid(format!("{path}.confirmationUrl is required when url holds a substitution template"))),
        None => Ok(()),
        Some(c) => {
            if !scheme_ok(&c.source) {
                return Err(RulesError::Invalid(format!("{path}.confirmationUrl must be an http:// or https:// URL")));
            }
            if !c.is_templated() && !url.source.starts_with(&c.source) {
                return Err(RulesError::Invalid(format!("{path}.url must begin with confirmationUrl {:?}", c.source)));
            }
            Ok(())
        }
    }
}

/// Compiles a `TopicRulePayload`. Statement errors are SqlParseException; everything else
/// InvalidRequestException.
pub fn compile(name: &str, payload: &Value) -> Result<CompiledRule, RulesError> {
    let p = Obj::of(payload, "topicRulePayload")?;
    let sql = p.required("sql")?;
    let version = match p.str("awsIotSqlVersion")? {
        None => DEFAULT_SQL_VERSION,
        Some(v) => SqlVersion::parse(v).ok_or_else(|| {
            RulesError::Invalid(format!("topicRulePayload.awsIotSqlVersion must be 2015-10-08, 2016-03-23 or beta, not {v:?}"))
        })?,
    };
    if let Some(d) = p.str("description")?
        && d.len() > 10_000
    {
        return Err(RulesError::Invalid("topicRulePayload.description is too long".into()));
    }
    let query = Query::parse(sql, version).map_err(|e| sql_parse_error(sql, &e))?;
    let topic_filter = query.topic_filter().map(str::to_string);
    if let Some(f) = &topic_filter
        && mqtt::topic::parse_filter(f).is_err()
    {
        return Err(RulesError::SqlParse(format!("FROM {f:?} is not a valid topic filter")));
    }
    let list = p.list("actions")?.ok_or_else(|| RulesError::Invalid("topicRulePayload.actions is required".into()))?;
    if list.len() > 10 {
        return Err(RulesError::Invalid("topicRulePayload.actions may hold at most 10 actions".into()));
    }
    let actions = list
        .iter()
        .enumerate()
        .map(|(i, a)| compile_action(a, version, &format!("topicRulePayload.actions[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let error_action = match p.get("errorAction") {
        None => None,
        Some(a) => Some(compile_action(a, version, "topicRulePayload.errorAction")?),
    };
    Ok(CompiledRule { name: name.to_string(), query, version, topic_filter, actions, error_action, disabled: p.bool("ruleDisabled")? })
}

/// Checks a rule name as the model does: 1 to 128 letters, digits or underscores.
pub fn validate_rule_name(name: &str) -> Result<(), RulesError> {
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(RulesError::Invalid(format!(
            "1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Result<CompiledRule, RulesError> {
        compile("r", &v)
    }

    #[test]
    fn payloads_compile_with_aws_defaults() {
        let r = rule(json!({"sql": "SELECT * FROM 'a/+'", "actions": [{"republish": {"topic": "b/${topic(2)}", "roleArn": "arn:aws:iam::1:role/x"}}]})).unwrap();
        assert_eq!(r.version, SqlVersion::V2015_10_08);
        assert_eq!(r.topic_filter.as_deref(), Some("a/+"));
        assert!(!r.disabled && !r.has_external_actions());
        let Action::Republish { qos, .. } = &r.actions[0] else { panic!() };
        assert_eq!(*qos, QoS::AtMostOnce);
        let r = rule(json!({"sql": "SELECT 1 AS x", "awsIotSqlVersion": "2016-03-23", "actions": [], "ruleDisabled": true})).unwrap();
        assert!(r.disabled && r.topic_filter.is_none());
    }

    #[test]
    fn sql_errors_name_the_position_and_the_problem() {
        let e = rule(json!({"sql": "SELECT * FROM 'a' WHERE", "actions": []})).unwrap_err();
        let RulesError::SqlParse(m) = e else { panic!("{e:?}") };
        assert!(m.starts_with("Line 1:"), "{m}");
        assert!(m.contains("character"), "{m}");
        let e = rule(json!({"sql": "SELECT *\nFROM 'a' WHERE x >", "actions": []})).unwrap_err();
        let RulesError::SqlParse(m) = e else { panic!("{e:?}") };
        assert!(m.starts_with("Line 2:"), "{m}");
    }

    #[test]
    fn actions_are_checked_when_the_rule_is_created() {
        let bad = |a: Value| rule(json!({"sql": "SELECT * FROM 'a'", "actions": [a]})).unwrap_err().to_string();
        assert!(bad(json!({"dynamoDB": {"tableName": "t"}})).contains("dynamoDB action is not supported"));
        assert!(bad(json!({"republish": {"topic": "x"}})).contains("roleArn is required"));
        assert!(bad(json!({"republish": {"topic": "x", "roleArn": "r", "qos": 2}})).contains("qos must be 0 or 1"));
        assert!(bad(json!({"republish": {"topic": "${", "roleArn": "r"}})).contains("does not parse"));
        assert!(bad(json!({"http": {"url": "https://a.example/${topic()}"}})).contains("confirmationUrl is required"));
        assert!(bad(json!({"http": {"url": "https://a.example/x", "confirmationUrl": "https://b.example"}})).contains("must begin with"));
        assert!(bad(json!({"http": {"url": "ftp://a"}})).contains("http:// or https://"));
        assert!(bad(json!({"lambda": {"functionArn": "arn:aws:s3:::b"}})).contains("functionArn"));
        assert!(bad(json!({"republish": {"topic": "x", "roleArn": "r"}, "lambda": {"functionArn": "f"}})).contains("exactly one"));
        let r = rule(json!({"sql": "SELECT * FROM 'a'", "actions": [{"http": {"url": "https://a.example/in/${topic()}", "confirmationUrl": "https://a.example/in"}}]})).unwrap();
        assert_eq!(r.actions[0].fixed_destination(), Some("https://a.example/in"));
        let r = rule(json!({"sql": "SELECT * FROM 'a'", "actions": [{"http": {"url": "http://h/x"}}]})).unwrap();
        assert_eq!(r.actions[0].fixed_destination(), Some("http://h/x"));
        assert!(r.has_external_actions());
        assert!(validate_rule_name("ok_1").is_ok());
        assert!(validate_rule_name("no-dash").is_err());
    }
}
