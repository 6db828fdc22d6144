//! Criterion benchmark of AWS IoT SQL evaluation per message, as the rules engine runs it: read
//! the payload (JSON), evaluate SET/WHERE/SELECT with the message's context, render a
//! substitution template, serialize the output.
//!
//! `cargo bench -p rules --bench evaluate`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iotsql::{Message, Query, SqlVersion, Template, TemplateContext, TestHost};
use std::hint::black_box;

const PAYLOAD: &[u8] = br#"{"deviceId":"sensor-0042","temp":31.5,"humidity":48,"battery":{"level":87,"charging":false},"location":{"lat":52.52,"lon":13.405},"readings":[{"v":12},{"v":15},{"v":19},{"v":22},{"v":18}],"status":"ok"}"#;

fn bench(c: &mut Criterion) {
    let host = TestHost::with_topic("sensors/sensor-0042/data");
    let cases = [
        ("select_star", "SELECT * FROM 'sensors/+/data'"),
        ("filter_project", "SELECT temp, humidity, topic(2) AS device FROM 'sensors/+/data' WHERE temp > 30"),
        ("filter_miss", "SELECT temp FROM 'sensors/+/data' WHERE temp > 40"),
        (
            "functions",
            "SELECT upper(status) AS s, round(temp * 1.8 + 32) AS f, battery.level AS bat, readings[2].v AS r, \
             concat(deviceId, '-', topic(3)) AS id, timestamp() AS ts FROM 'sensors/+/data' \
             WHERE battery.level > 20 AND NOT battery.charging",
        ),
        ("nested_select", "SELECT (SELECT VALUE v FROM readings WHERE v > 16) AS high FROM 'sensors/+/data'"),
    ];
    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(1));
    for (name, sql) in cases {
        let q = Query::parse(sql, SqlVersion::V2016_03_23).expect("benchmark SQL parses");
        g.bench_function(name, |b| {
            b.iter(|| {
                let msg = Message::new(black_box(PAYLOAD));
                let out = q.evaluate_message(&msg, &host).expect("evaluates");
                black_box(out.map(|e| e.output.to_bytes()))
            })
        });
    }
    g.bench_function("parse_payload_only", |b| b.iter(|| black_box(Message::new(black_box(PAYLOAD)))));
    let t = Template::parse("alerts/${topic(2)}/${upper(status)}", SqlVersion::V2016_03_23).expect("template parses");
    let msg = Message::new(PAYLOAD);
    g.bench_function("template", |b| {
        b.iter(|| {
            let ctx = TemplateContext { message: &msg, host: &host, version: SqlVersion::V2016_03_23, variables: None };
            black_box(t.render(&ctx).expect("renders"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
