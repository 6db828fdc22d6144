//! The AWS IoT policy language: parsing (with `MalformedPolicyException` reasons), policy
//! variables, and evaluation (explicit deny wins, default deny).

use serde_json::Value;
use std::net::IpAddr;

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement: effect, actions (or not-actions), resources (or not-resources), conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub effect: Effect,
    actions: Vec<String>,
    not_actions: bool,
    resources: Vec<String>,
    not_resources: bool,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: String,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

impl Decision {
    /// True for Allow.
    pub fn allowed(self) -> bool {
        self == Decision::Allow
    }
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "Bool",
    "Null",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "IpAddress",
    "NotIpAddress",
];

fn strings(v: &Value, what: &str) -> Result<Vec<String>, MalformedPolicy> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(MalformedPolicy(format!("{what} must hold strings"))),
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        _ => Err(MalformedPolicy(format!("{what} must be a string or a non-empty list of strings"))),
    }
}

/// Parses an AWS IoT policy document (actions `iot:...`).
pub fn parse(doc: &str) -> Result<Policy, MalformedPolicy> {
    parse_with(doc, iot_action)
}

/// Parses an IAM policy document: the same grammar, actions of any service (`iot:CreateThing`,
/// `lambda:Invoke*`, `iam:*`, `*`).
pub fn parse_iam(doc: &str) -> Result<Policy, MalformedPolicy> {
    parse_with(doc, |a| {
        if a == "*" || a.split_once(':').is_some_and(|(svc, name)| !svc.is_empty() && !name.is_empty() && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
            Ok(())
        } else {
            Err(MalformedPolicy(format!("Action {a:?} is not service:action")))
        }
    })
}

fn iot_action(a: &str) -> Result<(), MalformedPolicy> {
    if a != "*" && !a.to_ascii_lowercase().starts_with("iot:") {
        return Err(MalformedPolicy(format!("Action {a:?} is not an AWS IoT action (iot:...)")));
    }
    Ok(())
}

fn parse_with(doc: &str, action_ok: fn(&str) -> Result<(), MalformedPolicy>) -> Result<Policy, MalformedPolicy> {
    let v: Value = serde_json::from_str(doc).map_err(|e| MalformedPolicy(format!("Policy document is not valid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| MalformedPolicy("Policy document must be a JSON object".into()))?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "Version" | "Statement" | "Id") {
            return Err(MalformedPolicy(format!("Policy document has an unknown element {k:?}")));
        }
    }
    if let Some(version) = obj.get("Version")
        && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(MalformedPolicy(format!("Policy document has an unsupported Version {version}")));
    }
    let statements = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err(MalformedPolicy("Policy document must have a non-empty Statement".into())),
    };
    let statements = statements.iter().map(|v| statement(v, action_ok)).collect::<Result<Vec<_>, _>>()?;
    Ok(Policy { statements })
}

fn statement(v: &Value, action_ok: fn(&str) -> Result<(), MalformedPolicy>) -> Result<Statement, MalformedPolicy> {
    let o = v.as_object().ok_or_else(|| MalformedPolicy("Each Statement must be a JSON object".into()))?;
    for k in o.keys() {
        if !matches!(k.as_str(), "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition") {
            return Err(MalformedPolicy(format!("Statement has an unknown element {k:?}")));
        }
    }
    let effect = match o.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(MalformedPolicy(format!("Statement Effect must be Allow or Deny, not {other:?}"))),
    };
    let (actions, not_actions) = match (o.get("Action"), o.get("NotAction")) {
        (Some(a), None) => (strings(a, "Action")?, false),
        (None, Some(a)) => (strings(a, "NotAction")?, true),
        _ => return Err(MalformedPolicy("Statement needs exactly one of Action and NotAction".into())),
    };
    for a in &actions {
        action_ok(a)?;
    }
    let (resources, not_resources) = match (o.get("Resource"), o.get("NotResource")) {
        (Some(r), None) => (strings(r, "Resource")?, false),
        (None, Some(r)) => (strings(r, "NotResource")?, true),
        _ => return Err(MalformedPolicy("Statement needs exactly one of Resource and NotResource".into())),
    };
    let mut conditions = Vec::new();
    if let Some(c) = o.get("Condition") {
        let c = c.as_object().ok_or_else(|| MalformedPolicy("Condition must be a JSON object".into()))?;
        for (op, block) in c {
            let (base, if_exists) = match op.strip_suffix("IfExists") {
                Some(b) => (b, true),
                None => (op.as_str(), false),
            };
            let base = base.strip_prefix("ForAnyValue:").or_else(|| base.strip_prefix("ForAllValues:")).unwrap_or(base);
            if !OPERATORS.contains(&base) {
                return Err(MalformedPolicy(format!("Condition operator {op:?} is not supported")));
            }
            let block = block.as_object().ok_or_else(|| MalformedPolicy(format!("Condition {op} must map keys to values")))?;
            for (key, values) in block {
                conditions.push(Condition { operator: base.to_string(), if_exists, key: key.clone(), values: strings(values, "Condition value")? });
            }
        }
    }
    Ok(Statement { effect, actions, not_actions, resources, not_resources, conditions })
}

/// `${*}` after substitution: a literal `*` (a private-use character no ARN contains).
const LITERAL_STAR: char = '\u{E000}';
/// `${?}` after substitution: a literal `?`.
const LITERAL_QUESTION: char = '\u{E001}';

/// Glob match with `*` (any run) and `?` (one character); `${*}` and `${?}` match themselves.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let literal = |c: char| match c {
        LITERAL_STAR => '*',
        LITERAL_QUESTION => '?',
        c => c,
    };
    let eq = |a: char, b: char| {
        let a = literal(a);
        if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b }
    };
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Replaces `${name}` with the values `vars` gives; `None` when a variable has no value (the
/// string then matches nothing, as in AWS).
pub fn substitute(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        let value = match name {
            // AWS's escapes for a literal `*` and `?`: marked so that `glob` does not take them
            // for wildcards.
            "*" => LITERAL_STAR.to_string(),
            "?" => LITERAL_QUESTION.to_string(),
            "$" => "$".to_string(),
            _ => vars(name)?,
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// What is being asked: an action on a resource, with the variables of the connection.
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// Policy variables and condition keys (`iot:ClientId`, `iot:Connection.Thing.ThingName`, ...).
    pub vars: &'a dyn Fn(&str) -> Option<String>,
}

impl Statement {
    fn matches(&self, req: &Request) -> bool {
        let action_hit = self.actions.iter().any(|a| glob(a, req.action, true));
        if action_hit == self.not_actions {
            return false;
        }
        let resource_hit = self.resources.iter().any(|r| substitute(r, req.vars).is_some_and(|r| glob(&r, req.resource, false)));
        if resource_hit == self.not_resources {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(req.vars))
    }
}

impl Condition {
    fn holds(&self, vars: &dyn Fn(&str) -> Option<String>) -> bool {
        let actual = vars(&self.key);
        if self.operator == "Null" {
            let want_null = self.values.iter().any(|v| v == "true");
            return actual.is_none() == want_null;
        }
        let Some(actual) = actual else { return self.if_exists };
        let values: Vec<String> = self.values.iter().filter_map(|v| substitute(v, vars)).collect();
        let num = |s: &str| s.parse::<f64>().ok();
        let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
        match self.operator.as_str() {
            "StringEquals" | "ArnEquals" => any(&|v| v == actual),
            "StringNotEquals" | "ArnNotEquals" => !any(&|v| v == actual),
            "StringEqualsIgnoreCase" => any(&|v| v.eq_ignore_ascii_case(&actual)),
            "StringNotEqualsIgnoreCase" => !any(&|v| v.eq_ignore_ascii_case(&actual)),
            "StringLike" | "ArnLike" => any(&|v| glob(v, &actual, false)),
            "StringNotLike" | "ArnNotLike" => !any(&|v| glob(v, &actual, false)),
            "Bool" => any(&|v| v.eq_ignore_ascii_case(&actual)),
            "NumericEquals" => any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| a == b)),
            "NumericNotEquals" => !any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| a == b)),
            "NumericLessThan" => any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| b < a)),
            "NumericLessThanEquals" => any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| b <= a)),
            "NumericGreaterThan" => any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| b > a)),
            "NumericGreaterThanEquals" => any(&|v| num(v).zip(num(&actual)).is_some_and(|(a, b)| b >= a)),
            "IpAddress" => any(&|v| ip_in(&actual, v)),
            "NotIpAddress" => !any(&|v| ip_in(&actual, v)),
            _ => false,
        }
    }
}

fn ip_in(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else { return false };
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, if cidr.contains(':') { "128" } else { "32" }));
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl Policy {
    /// Whether the policy allows every IoT action on every resource whatever the request's
    /// variables: no Deny statement, and an unconditional Allow of `iot:*` (or `*`) on `*`.
    /// Such a policy needs no evaluation.
    pub fn allows_everything(&self) -> bool {
        let unconditional_allow_all = |s: &Statement| {
            s.effect == Effect::Allow
                && !s.not_actions
                && !s.not_resources
                && s.conditions.is_empty()
                && s.actions.iter().any(|a| a == "*" || a.eq_ignore_ascii_case("iot:*"))
                && s.resources.iter().any(|r| r == "*")
        };
        self.statements.iter().all(|s| s.effect == Effect::Allow) && self.statements.iter().any(unconditional_allow_all)
    }
}

/// Evaluates every statement of every policy: an explicit Deny wins, then any Allow, else the
/// default deny.
pub fn evaluate<'p>(policies: impl IntoIterator<Item = &'p Policy>, req: &Request) -> Decision {
    let mut allowed = false;
    for p in policies {
        for s in &p.statements {
            if s.matches(req) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_an_unconditional_allow_of_everything_allows_everything() {
        let doc = |stmts: &str| parse(&format!(r#"{{"Version":"2012-10-17","Statement":[{stmts}]}}"#)).unwrap();
        let all = r#"{"Effect":"Allow","Action":"iot:*","Resource":"*"}"#;
        assert!(doc(all).allows_everything());
        assert!(doc(r#"{"Effect":"Allow","Action":["iot:Publish","*"],"Resource":["*"]}"#).allows_everything());
        assert!(!doc(&format!(r#"{all},{{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}}"#)).allows_everything());
        assert!(!doc(r#"{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}"#).allows_everything());
        assert!(!doc(r#"{"Effect":"Allow","Action":"iot:*","Resource":"arn:aws:iot:*:*:topic/*"}"#).allows_everything());
        assert!(!doc(r#"{"Effect":"Allow","NotAction":"iot:Connect","Resource":"*"}"#).allows_everything());
        assert!(!doc(r#"{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}"#).allows_everything());
    }

    const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

    fn vars<'a>(m: &'a HashMap<&'a str, &'a str>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| m.get(k).map(|v| v.to_string())
    }

    fn decide(policy: &str, action: &str, resource: &str, ctx: &HashMap<&str, &str>) -> Decision {
        let p = parse(policy).unwrap_or_else(|e| panic!("{e}: {policy}"));
        let v = vars(ctx);
        evaluate([&p], &Request { action, resource, vars: &v })
    }

    #[test]
    fn table_of_decisions() {
        let ctx: HashMap<&str, &str> = [
            ("iot:ClientId", "thing-1"),
            ("iot:Connection.Thing.ThingName", "thing-1"),
            ("iot:Connection.Thing.ThingTypeName", "sensor"),
            ("iot:Connection.Thing.Attributes[site]", "lab"),
            ("iot:Connection.Thing.IsAttached", "true"),
            ("iot:Certificate.Subject.CommonName", "thing-1"),
            ("aws:SourceIp", "10.1.2.3"),
        ]
        .into_iter()
        .collect();
        let connect_own = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Connect","Resource":"{ARN}:client/${{iot:ClientId}}"}}]}}"#);
        let pub_site = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"{ARN}:topic/site/${{iot:Connection.Thing.Attributes[site]}}/*"}}}}"#
        );
        let deny_secret = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"iot:*","Resource":"*"}},{{"Effect":"Deny","Action":"iot:Publish","Resource":"{ARN}:topic/secret/?"}}]}}"#
        );
        let not_action = r#"{"Statement":[{"Effect":"Allow","NotAction":"iot:Subscribe","Resource":"*"}]}"#;
        let cond = r#"{"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#.to_string();
        let cases: Vec<(&str, &str, String, Decision)> = vec![
            (&connect_own, "iot:Connect", format!("{ARN}:client/thing-1"), Decision::Allow),
            (&connect_own, "iot:Connect", format!("{ARN}:client/thing-2"), Decision::ImplicitDeny),
            (&connect_own, "iot:Publish", format!("{ARN}:client/thing-1"), Decision::ImplicitDeny),
            (&pub_site, "iot:Publish", format!("{ARN}:topic/site/lab/temp"), Decision::Allow),
            (&pub_site, "iot:receive", format!("{ARN}:topic/site/lab/x/y"), Decision::Allow),
            (&pub_site, "iot:Publish", format!("{ARN}:topic/site/home/temp"), Decision::ImplicitDeny),
            (&deny_secret, "iot:Publish", format!("{ARN}:topic/secret/a"), Decision::ExplicitDeny),
            (&deny_secret, "iot:Publish", format!("{ARN}:topic/secret/ab"), Decision::Allow),
            (&deny_secret, "iot:Subscribe", format!("{ARN}:topicfilter/secret/a"), Decision::Allow),
            (not_action, "iot:Subscribe", format!("{ARN}:topicfilter/a"), Decision::ImplicitDeny),
            (not_action, "iot:Publish", format!("{ARN}:topic/a"), Decision::Allow),
            (&cond, "iot:Connect", format!("{ARN}:client/x"), Decision::Allow),
        ];
        for (policy, action, resource, want) in cases {
            assert_eq!(decide(policy, action, &resource, &ctx), want, "{action} {resource} under {policy}");
        }
        // An unknown variable makes the resource match nothing.
        let mut no_thing = ctx.clone();
        no_thing.remove("iot:Connection.Thing.Attributes[site]");
        assert_eq!(decide(&pub_site, "iot:Publish", &format!("{ARN}:topic/site/lab/temp"), &no_thing), Decision::ImplicitDeny);
        let mut outside = ctx.clone();
        outside.insert("aws:SourceIp", "192.168.1.1");
        assert_eq!(decide(&cond, "iot:Connect", &format!("{ARN}:client/x"), &outside), Decision::ImplicitDeny);
    }

    #[test]
    fn deny_wins_across_policies() {
        let allow = parse(r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#).unwrap();
        let deny = parse(r#"{"Statement":[{"Effect":"Deny","Action":"iot:Connect","Resource":"*"}]}"#).unwrap();
        let none = |_: &str| None;
        let req = Request { action: "iot:Connect", resource: "arn:x", vars: &none };
        assert_eq!(evaluate([&allow, &deny], &req), Decision::ExplicitDeny);
        assert_eq!(evaluate([&allow], &req), Decision::Allow);
        assert_eq!(evaluate(std::iter::empty::<&Policy>(), &req), Decision::ImplicitDeny);
    }

    #[test]
    fn malformed_documents_say_why() {
        for (doc, needle) in [
            ("not json", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"Statement":[]}"#, "non-empty Statement"),
            (r#"{"Statement":[{"Effect":"Maybe","Action":"iot:*","Resource":"*"}]}"#, "Effect"),
            (r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#, "Action"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#, "not an AWS IoT action"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"iot:*"}]}"#, "Resource"),
            (r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"Foo":{"a":"b"}}}]}"#, "not supported"),
            (r#"{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#, "Version"),
        ] {
            let e = parse(doc).unwrap_err();
            assert!(e.0.contains(needle), "{doc}: {e}");
        }
    }

    #[test]
    fn globs_and_substitution() {
        assert!(glob("a*c", "abbbc", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "abbc", false));
        assert!(glob("IOT:PUB*", "iot:Publish", true));
        assert!(glob("*", "", false));
        let v = |k: &str| (k == "iot:ClientId").then(|| "c1".to_string());
        assert_eq!(substitute("client/${iot:ClientId}", &v).as_deref(), Some("client/c1"));
        let star = substitute("topic/${*}", &v).unwrap();
        assert!(glob(&star, "topic/*", false), "${{*}} matches a literal star");
        assert!(!glob(&star, "topic/anything", false), "${{*}} is not a wildcard");
        assert_eq!(substitute("x/${iot:Other}", &v), None);
    }
}
