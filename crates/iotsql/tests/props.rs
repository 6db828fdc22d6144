//! Properties: parsing never panics on any text, evaluation never panics on any JSON (or
//! binary) payload, templates never panic, and JSON text survives a parse/serialize round.

use iotsql::{Func, Message, Query, SqlVersion, TemplateContext, TestHost, json, substitute_template};
use proptest::prelude::*;

/// Arbitrary JSON documents (numbers of every shape: ints, big ints, decimals, exponents).
fn arb_json() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        "-?[1-9][0-9]{0,40}(\\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?",
    ];
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        number,
        "[a-zA-Z0-9 €\\-_.:/]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-e]{1,2}", inner), 0..6).prop_map(|kv| {
                let members: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// Fragments that make syntactically interesting statements when strung together.
fn arb_sql_soup() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("SELECT"),
        Just("VALUE"),
        Just("*"),
        Just("FROM"),
        Just("'a/#'"),
        Just("WHERE"),
        Just("AS"),
        Just("a"),
        Just("b.c"),
        Just("d[0]"),
        Just("("),
        Just(")"),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(","),
        Just(":"),
        Just("."),
        Just("+"),
        Just("-"),
        Just("/"),
        Just("%"),
        Just("="),
        Just("<>"),
        Just("<="),
        Just(">"),
        Just("AND"),
        Just("OR"),
        Just("NOT"),
        Just("CASE"),
        Just("WHEN"),
        Just("THEN"),
        Just("ELSE"),
        Just("END"),
        Just("cast"),
        Just("Int"),
        Just("1"),
        Just("2.5"),
        Just("1e3"),
        Just("'s'"),
        Just("\"t\""),
        Just("`q`"),
        Just("@v"),
        Just("SET"),
        Just("upper"),
        Just("get"),
        Just("concat"),
        Just("substring"),
        Just("true"),
        Just("null"),
        Just("'unterminated"),
        Just("€"),
    ];
    prop::collection::vec(frag, 0..30).prop_map(|v| v.join(" "))
}

/// One statement calling every function (except the unsupported one) on payload fields,
/// so arbitrary payloads reach every implementation.
fn all_functions_sql() -> Vec<String> {
    Func::all()
        .filter(|(n, _)| *n != "machinelearning_predict")
        .map(|(n, _)| {
            format!(
                "SELECT {n}() AS f0, {n}(a) AS f1, {n}(a, b) AS f2, {n}(b, a, c) AS f3, {n}(*, 'base64') AS f4, \
                 {n}(c, 1) AS f5, {n}('enrichArray', a, b) AS f6 FROM 'x'"
            )
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "SELECT * FROM 'x'",
    "SELECT VALUE * FROM 'x'",
    "SELECT *, a + b AS s, a - b AS d, a * b AS m, a / b AS q, a % b AS r, -a AS n FROM 'x' WHERE a = b OR a <> c",
    "SELECT a.b.c, a[0], a[1].b, a['k'] AS k, get(a, b) AS g FROM 'x' WHERE NOT a < b AND b >= c",
    "SELECT (SELECT VALUE x FROM a) AS xs, (SELECT * FROM b WHERE c > 1) AS ys FROM 'x'",
    "SELECT CASE a WHEN b THEN c ELSE a END AS k, CASE WHEN a > b THEN 1 END AS w FROM 'x'",
    "SELECT cast(a AS String) AS s, cast(a AS Int) AS i, cast(a AS Double) AS d, cast(a AS Decimal) AS m, cast(a AS Boolean) AS b FROM 'x'",
    "SET @v = a, @w = @v.b SELECT @v AS v, @w AS w, [a, b, {'c': c}] AS lit FROM 'x'",
    "SELECT VALUE parse_time(a, b, c) FROM 'x'",
    "SELECT VALUE time_to_epoch(a, b) FROM 'x'",
    "SELECT VALUE transform('enrichArray', a, b) FROM 'x'",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_any_text(s in "\\PC{0,80}") {
        let _ = Query::parse(&s, SqlVersion::V2016_03_23);
        let _ = Query::parse(&s, SqlVersion::V2015_10_08);
    }

    #[test]
    fn parse_never_panics_on_token_soup(s in arb_sql_soup()) {
        let _ = Query::parse(&s, SqlVersion::V2016_03_23);
        let _ = Query::parse(&format!("SELECT {s} FROM 'x'"), SqlVersion::V2016_03_23);
        let _ = iotsql::parse_expression(&s, SqlVersion::V2016_03_23);
    }

    #[test]
    fn evaluation_never_panics_on_any_json(doc in arb_json()) {
        prop_assert!(json::parse(doc.as_bytes()).is_some(), "generated JSON must parse: {}", doc);
        let host = TestHost::default();
        for sql in QUERIES {
            let q = Query::parse(sql, SqlVersion::V2016_03_23).expect("fixed query parses");
            let _ = q.evaluate(doc.as_bytes(), &host);
        }
        for sql in all_functions_sql() {
            let q = Query::parse(&sql, SqlVersion::V2016_03_23).expect("function query parses");
            let _ = q.evaluate(doc.as_bytes(), &host);
        }
    }

    #[test]
    fn evaluation_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let host = TestHost::default();
        for sql in QUERIES {
            let q = Query::parse(sql, SqlVersion::V2016_03_23).expect("fixed query parses");
            let _ = q.evaluate(&bytes, &host);
        }
    }

    #[test]
    fn functions_never_panic_on_arbitrary_arguments(
        f in 0usize..200,
        a in arb_json(),
        b in prop_oneof![arb_json(), "'[a-zA-Z%\\\\$(){}\\[\\]*+.? 0-9-]{0,16}'".prop_map(|s| s)],
    ) {
        let funcs: Vec<&str> = Func::all().map(|(n, _)| n).filter(|n| *n != "machinelearning_predict").collect();
        let name = funcs[f % funcs.len()];
        let host = TestHost::default();
        for args in [a.to_string(), format!("{a}, {b}"), format!("{b}, {a}"), format!("{a}, {b}, {b}")] {
            let sql = format!("SELECT VALUE {name}({args}) FROM 'x'");
            if let Ok(q) = Query::parse(&sql, SqlVersion::V2016_03_23) {
                let _ = q.evaluate(b"{}", &host);
            }
        }
    }

    #[test]
    fn templates_never_panic(t in "\\PC{0,60}", doc in arb_json()) {
        let msg = Message::new(doc.as_bytes());
        let host = TestHost::default();
        let ctx = TemplateContext { message: &msg, host: &host, version: SqlVersion::V2016_03_23, variables: None };
        let _ = substitute_template(&t, &ctx);
        let _ = substitute_template(&format!("x/${{{t}}}"), &ctx);
    }

    #[test]
    fn json_round_trips(doc in arb_json()) {
        let v = json::parse(doc.as_bytes()).expect("parses");
        let text = json::to_string(&v);
        let again = json::parse(text.as_bytes()).expect("reparses");
        prop_assert_eq!(json::to_string(&again), text);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("SELECT VALUE {}1{} FROM 'x'", "(".repeat(5000), ")".repeat(5000));
    assert!(Query::parse(&deep, SqlVersion::V2016_03_23).is_err());
    let ok = format!("SELECT VALUE {}1{} FROM 'x'", "(".repeat(50), ")".repeat(50));
    let q = Query::parse(&ok, SqlVersion::V2016_03_23).expect("50 levels parse");
    assert!(q.evaluate(b"{}", &TestHost::default()).is_ok());
    let negs = format!("SELECT VALUE {}1 FROM 'x'", "- ".repeat(5000));
    assert!(Query::parse(&negs, SqlVersion::V2016_03_23).is_err());
    let nots = format!("SELECT VALUE {}true FROM 'x'", "NOT ".repeat(5000));
    assert!(Query::parse(&nots, SqlVersion::V2016_03_23).is_err());
    let arrays = format!("SELECT VALUE {}1{} FROM 'x'", "[".repeat(5000), "]".repeat(5000));
    assert!(Query::parse(&arrays, SqlVersion::V2016_03_23).is_err());
    let deep_json = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(json::parse(deep_json.as_bytes()).is_none(), "too deep for JSON: treated as binary");
    let q = Query::parse("SELECT * FROM 'x'", SqlVersion::V2016_03_23).expect("parses");
    assert!(q.evaluate(deep_json.as_bytes(), &TestHost::default()).is_ok());
    // The deepest JSON accepted goes through copy, comparison, conversion and output.
    let deepest =
        format!("{{\"a\":{}1{},\"b\":{}1{}}}", "[".repeat(250), "]".repeat(250), "[".repeat(250), "]".repeat(250));
    assert!(json::parse(deepest.as_bytes()).is_some());
    let q = Query::parse(
        "SELECT *, a = b AS same, upper(a) AS up, (SELECT VALUE x FROM a) AS sub FROM 'x' WHERE a = b",
        SqlVersion::V2016_03_23,
    )
    .expect("parses");
    let out = q.evaluate(deepest.as_bytes(), &TestHost::default()).expect("evaluates").expect("WHERE true");
    assert!(out.to_bytes().len() > 1000);
}
