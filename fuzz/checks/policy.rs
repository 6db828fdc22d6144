//! The checks of the `policy` fuzz target, shared with its corpus replay test (`#[path]`-included by
//! both): arbitrary bytes as an AWS IoT policy document, evaluated when it parses for a
//! few actions and resources under a few sets of policy variables; the glob matcher and the
//! variable substitution on the input's two halves. None may panic, and the decisions must
//! be consistent (a policy that allows everything allows each request; a policy twice decides
//! as once).

use identity::policy::{Decision, Request, evaluate, glob, parse, parse_iam, substitute};


const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

const ACTIONS: [&str; 6] = ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:GetThingShadow", "iot:UpdateThingShadow"];

/// Resources under `ARN`.
const RESOURCES: [&str; 6] = ["client/thing-1", "topic/site/lab/temp", "topicfilter/site/+/temp", "topic/$aws/things/thing-1/shadow/update", "thing/thing-1", "client/"];

/// Sets of policy variables and condition keys: a thing's connection, a bare client, none.
const VARS: [&[(&str, &str)]; 3] = [
    &[
        ("iot:ClientId", "thing-1"),
        ("iot:Connection.Thing.ThingName", "thing-1"),
        ("iot:Connection.Thing.ThingTypeName", "sensor"),
        ("iot:Connection.Thing.Attributes[site]", "lab"),
        ("iot:Connection.Thing.IsAttached", "true"),
        ("iot:Certificate.Subject.CommonName", "thing-1"),
        ("aws:SourceIp", "10.1.2.3"),
        ("iot:Connection.Thing.Attributes[n]", "42.5"),
    ],
    &[("iot:ClientId", "*?${x}"), ("aws:SourceIp", "2001:db8::1"), ("iot:Connection.Thing.IsAttached", "false")],
    &[],
];

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_glob(&text);
    // IAM policies (the same grammar, any service's actions) must not panic either.
    let _ = parse_iam(&text);
    let Ok(policy) = parse(&text) else { return };
    let everything = policy.allows_everything();
    for vars in VARS {
        let lookup = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        for action in ACTIONS {
            for resource in RESOURCES {
                let resource = format!("{ARN}:{resource}");
                let req = Request { action, resource: &resource, vars: &lookup };
                let once = evaluate([&policy], &req);
                assert_eq!(evaluate([&policy, &policy], &req), once, "{action} {resource}: the policy twice decides otherwise");
                if everything {
                    assert_eq!(once, Decision::Allow, "{action} {resource}: a policy that allows everything decides {once:?}");
                }
                let _ = once.allowed();
            }
        }
    }
}

/// The input's two halves (at the first newline, else in the middle) as a glob pattern and a
/// text, and as a string with variables.
fn check_glob(text: &str) {
    let (pattern, subject) = text.split_once('\n').unwrap_or_else(|| {
        let mut mid = text.len() / 2;
        while !text.is_char_boundary(mid) {
            mid += 1;
        }
        text.split_at(mid)
    });
    let hit = glob(pattern, subject, false);
    if hit {
        assert!(glob(pattern, subject, true), "{pattern:?} matches {subject:?} but not ignoring case");
    }
    // (U+E000 and U+E001 are how `substitute` marks a literal `*` and `?`.)
    if !pattern.contains(['*', '?', '\u{E000}', '\u{E001}']) {
        assert_eq!(hit, pattern == subject, "{pattern:?} has no wildcard");
    }
    assert!(glob("*", subject, false));
    let vars = |k: &str| (k == "iot:ClientId").then(|| subject.to_owned());
    let _ = substitute(pattern, &vars);
}
