//! The checks of the `bind` fuzz target, shared with its corpus replay test (`#[path]`-included
//! by both): arbitrary bytes as a request to one operation of one model — the first two bytes
//! pick the service and the operation, then lines `label=value`, `?key=value`, `header: value`
//! up to an empty line, then the body — bound and validated against the operation's input.
//! Nothing may panic; a bound input has every required member of the input shape.

use awsmodel::bind::{Parts, bind};
use awsmodel::generated::ALL;

pub fn check(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let service = ALL[data[0] as usize % ALL.len()];
    let op = &service.operations[data[1] as usize % service.operations.len()];
    let rest = &data[2..];
    let split = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(rest.len());
    let (head, body) = (String::from_utf8_lossy(&rest[..split]), rest.get(split + 2..).unwrap_or(&[]));
    let (mut labels, mut query, mut headers) = (Vec::new(), Vec::new(), Vec::new());
    for line in head.lines() {
        if let Some(q) = line.strip_prefix('?') {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            query.push((k.to_string(), v.to_string()));
        } else if let Some((k, v)) = line.split_once(": ") {
            headers.push((k.to_ascii_lowercase(), v.to_string()));
        } else if let Some((k, v)) = line.split_once('=') {
            labels.push((k.to_string(), v.to_string()));
        }
    }
    let parts = Parts { labels: &labels, query: &query, headers: &headers, body, fields: &query };
    if let Ok(input) = bind(service, op, &parts)
        && let Some(shape) = op.input.map(|i| service.shape(i))
    {
        for m in shape.members.iter().filter(|m| m.required) {
            assert!(input.get(m.name).is_some_and(|v| !v.is_null()), "{}:{} bound without required {}", service.name, op.name, m.name);
        }
    }
}
