//! The public API around evaluation: messages, outputs, SET variables in templates, the
//! Host hooks that fixtures cannot set (MQTT 5 properties, external services).

use iotsql::{
    EvalError, Host, HostError, Message, Output, Query, SqlVersion, Template, TemplateContext, TestHost, Value, json,
    substitute_template,
};

fn q(sql: &str) -> Query {
    Query::parse(sql, SqlVersion::V2016_03_23).expect("parses")
}

#[test]
fn topic_filter_and_version() {
    let query = q("SELECT * FROM 'things/+/data'");
    assert_eq!(query.topic_filter(), Some("things/+/data"));
    assert_eq!(query.version(), SqlVersion::V2016_03_23);
    assert_eq!(q("SELECT 1 AS one").topic_filter(), None);
    assert_eq!(SqlVersion::parse("2015-10-08"), Some(SqlVersion::V2015_10_08));
    assert_eq!(SqlVersion::parse("2017-01-01"), None);
    assert_eq!(SqlVersion::V2016_03_23.as_str(), "2016-03-23");
}

#[test]
fn outputs() {
    let host = TestHost::default();
    let out = q("SELECT a, b FROM 'x'").evaluate(br#"{"a":1,"b":2.50}"#, &host).unwrap().unwrap();
    assert_eq!(out.to_bytes(), br#"{"a":1,"b":2.50}"#);
    assert_eq!(out.to_json(), Some(serde_json::json!({"a": 1, "b": 2.5})));
    let none = q("SELECT a FROM 'x' WHERE a > 5").evaluate(br#"{"a":1}"#, &host).unwrap();
    assert_eq!(none, None);
    let bin = q("SELECT * FROM 'x'").evaluate(&[0xff, 0x00], &host).unwrap().unwrap();
    assert_eq!(bin, Output::Binary(vec![0xff, 0x00]));
    assert_eq!(bin.to_json(), None);
    let undef = q("SELECT VALUE nothing FROM 'x'").evaluate(b"{}", &host).unwrap().unwrap();
    assert_eq!(undef.to_bytes(), b"");
    assert!(Message::new(b"not json").is_binary());
    assert!(!Message::new(b" {\"a\": [1, 2]} ").is_binary());
}

#[test]
fn set_variables_reach_templates() {
    let host = TestHost::with_topic("device/42/data");
    let query = q("SET @id = topic(2), @c = round((f - 32) / 1.8) SELECT @c AS celsius FROM 'device/+/data'");
    let msg = Message::new(br#"{"f": 212}"#);
    let ev = query.evaluate_message(&msg, &host).unwrap().unwrap();
    assert_eq!(ev.output.to_bytes(), br#"{"celsius":100}"#);
    assert_eq!(ev.variables.get("id"), Value::string("42"));
    let ctx = TemplateContext {
        message: &msg,
        host: &host,
        version: SqlVersion::V2016_03_23,
        variables: Some(&ev.variables),
    };
    assert_eq!(substitute_template("out/${@id}/${@c}/${f}", &ctx).unwrap(), "out/42/100/212");
    let t = Template::parse("${upper(topic(1))}", SqlVersion::V2016_03_23).unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "DEVICE");
}

#[test]
fn test_host_is_deterministic() {
    let host = TestHost::default();
    let query = q("SELECT newuuid() AS a, newuuid() AS b, rand() AS r1, rand() AS r2 FROM 'x'");
    let out = query.evaluate(b"{}", &host).unwrap().unwrap();
    assert_eq!(
        out.to_bytes(),
        br#"{"a":"00000000-0000-4000-8000-000000000001","b":"00000000-0000-4000-8000-000000000002","r1":0.5,"r2":0.25}"#
    );
}

#[test]
fn mqtt5_properties_through_the_host() {
    let mut host = TestHost::default();
    host.user_properties = vec![("k".into(), "v1".into()), ("x".into(), "y".into()), ("k".into(), "v2".into())];
    host.content_type = Some("application/json".into());
    let out = q("SELECT get_user_properties('k') AS k, get_user_properties() AS all, get_mqtt_property('content_type') AS ct FROM 'x'")
        .evaluate(b"{}", &host)
        .unwrap()
        .unwrap();
    assert_eq!(out.to_bytes(), br#"{"k":["v1","v2"],"all":[{"k":"v1"},{"x":"y"},{"k":"v2"}],"ct":"application/json"}"#);
}

/// A host that answers the external functions.
struct Services;

impl Host for Services {
    fn topic(&self) -> String {
        "a/b".into()
    }
    fn timestamp_millis(&self) -> i64 {
        0
    }
    fn new_uuid(&self) -> String {
        "u".into()
    }
    fn account_id(&self) -> String {
        "1".into()
    }
    fn rand(&self) -> f64 {
        0.0
    }
    fn aws_lambda(&self, arn: &str, input: &Value) -> Result<Value, HostError> {
        Ok(json::parse(format!(r#"{{"arn":"{arn}","echo":{}}}"#, json::to_string(input)).as_bytes())
            .unwrap_or_default())
    }
    fn get_dynamodb(&self, args: &[Value]) -> Result<Value, HostError> {
        Ok(json::parse(format!(r#"{{"location":"room-{}"}}"#, args.len()).as_bytes()).unwrap_or_default())
    }
    fn get_secret(&self, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError("access denied".into()))
    }
}

#[test]
fn external_functions_through_the_host() {
    let out =
        q("SELECT aws_lambda('arn:f', {'payload': attribute1}).echo.payload AS p, aws_lambda('arn:g', *).arn AS arn, \
                 get_dynamodb('T', 'deviceId', id, 'arn:r').location AS location FROM 'x'")
        .evaluate(br#"{"attribute1": 21, "id": "d"}"#, &Services)
        .unwrap()
        .unwrap();
    assert_eq!(out.to_bytes(), br#"{"p":21,"arn":"arn:g","location":"room-4"}"#);
    let err =
        q("SELECT get_secret('k', 'SecretString', 'arn:r') AS s FROM 'x'").evaluate(b"{}", &Services).unwrap_err();
    assert_eq!(err, EvalError::Host { function: "get_secret".into(), message: "access denied".into() });
    assert_eq!(err.to_string(), "get_secret failed: access denied");
}

#[test]
fn parse_error_display() {
    let e = Query::parse("SELECT a FROM 'x' WHERE", SqlVersion::V2016_03_23).unwrap_err();
    assert_eq!(e.position, 23);
    assert_eq!(e.to_string(), "at character 23: expected an expression but found end of statement");
}

#[test]
fn large_objects_keep_one_value_per_key() {
    let mut members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    members.push("\"k3\":\"last\"".to_string());
    members.push("\"k39\":true".to_string());
    let payload = format!("{{{}}}", members.join(","));
    let out = q("SELECT k3, k39, k0 FROM 'x'").evaluate(payload.as_bytes(), &TestHost::default()).unwrap().unwrap();
    assert_eq!(out.to_bytes(), br#"{"k3":"last","k39":true,"k0":0}"#);
    let all = q("SELECT * FROM 'x'").evaluate(payload.as_bytes(), &TestHost::default()).unwrap().unwrap();
    match all.value() {
        Some(Value::Object(o)) => assert_eq!(o.len(), 40),
        other => panic!("expected an object, got {other:?}"),
    }
}

/// Long operator chains are flat: evaluating and dropping them needs no recursion (a left-deep
/// tree of 50,000 terms overflowed a worker's stack). Run on a small stack to make sure.
#[test]
fn long_operator_chains_evaluate_and_drop_without_recursion() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let host = TestHost::default();
            let ors = vec!["x = 1"; 3000].join(" OR ");
            let query = q(&format!("SELECT x FROM 't' WHERE {ors}"));
            assert!(query.evaluate(br#"{"x":1}"#, &host).unwrap().is_some());
            assert!(query.evaluate(br#"{"x":2}"#, &host).unwrap().is_none());
            let sum = vec!["1"; 50_000].join(" + ");
            let out = q(&format!("SELECT {sum} - 1 * 2 AS s FROM 't'")).evaluate(b"{}", &host).unwrap().unwrap();
            assert_eq!(out.to_json(), Some(serde_json::json!({"s": 49_998})));
            let paths = format!("SELECT a{} AS v FROM 't'", ".b".repeat(100));
            assert!(Query::parse(&paths, SqlVersion::V2016_03_23).is_err(), "a path deeper than the nesting limit is refused");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn statements_are_bounded_in_size() {
    let huge = format!("SELECT * FROM 't' WHERE {}", vec!["x = 1"; 60_000].join(" OR "));
    let e = Query::parse(&huge, SqlVersion::V2016_03_23).unwrap_err();
    assert!(e.message.contains("bytes long"), "{e}");
}
