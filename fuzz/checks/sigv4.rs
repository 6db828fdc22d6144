//! The checks of the `sigv4` fuzz target, shared with its corpus replay test (`#[path]`-included by
//! both): arbitrary bytes as an HTTP request (method line, target line `path?query`,
//! `name: value` header lines, an empty line, the body) through SigV4 verification now and at
//! the request's own X-Amz-Date, and `parse_amz_date` on every line. None may panic;
//! `verify` must equal `verify_head` + `finish`; a request signed with `sign` must verify, and
//! no longer once its body changes.

use identity::sigv4::{AuthError, Request, format_amz_date, parse_amz_date, sign, verify, verify_head};
use std::time::{Duration, SystemTime, UNIX_EPOCH};


const REGION: &str = "us-east-1";

/// The parts of a request read from the input.
struct Parts {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parts {
    fn request(&self) -> Request<'_> {
        Request { method: &self.method, path: &self.path, query: &self.query, headers: &self.headers, body: &self.body }
    }
}

/// Reads the request: lines up to the first empty one (what is not UTF-8 replaced), the rest
/// is the body. Header names are lowercased, as the server's HTTP layer gives them.
fn parts(data: &[u8]) -> (Parts, Vec<String>) {
    let mut lines = Vec::new();
    let mut rest = data;
    let mut body = Vec::new();
    while !rest.is_empty() {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && lines.len() >= 2 {
            body = rest.to_vec();
            break;
        }
        lines.push(String::from_utf8_lossy(line).into_owned());
    }
    let method = lines.first().cloned().unwrap_or_default();
    let target = lines.get(1).cloned().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers = lines
        .iter()
        .skip(2)
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            (n.to_ascii_lowercase(), v.trim_start().to_owned())
        })
        .collect();
    (Parts { method, path: path.to_owned(), query: query.to_owned(), headers, body }, lines)
}

/// The request's date as SigV4 reads it: every `x-amz-date` header (whitespace runs made one
/// space, joined by commas), else the `X-Amz-Date` query parameter.
fn amz_date(p: &Parts) -> Option<String> {
    let values: Vec<String> = p
        .headers
        .iter()
        .filter(|(n, _)| n == "x-amz-date")
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    if !values.is_empty() {
        return Some(values.join(","));
    }
    p.query.split('&').find_map(|kv| kv.strip_prefix("X-Amz-Date=")).map(str::to_owned)
}

pub fn check(data: &[u8]) {
    let (p, lines) = parts(data);
    for line in &lines {
        check_date(line);
    }
    let req = p.request();
    let secret = |_: &str| Some("secret".to_string());
    let now = SystemTime::now();
    let _ = verify(&req, REGION, secret, now);
    let _ = verify_head(&req, REGION, secret, now).map(|pending| pending.finish(&req));
    let mut times = vec![UNIX_EPOCH];
    if let Some(secs) = amz_date(&p).and_then(|d| parse_amz_date(&d)) {
        check_date(&format_amz_date(secs));
        times.push(UNIX_EPOCH + Duration::from_secs(secs));
        times.push(UNIX_EPOCH + Duration::from_secs(secs + 3600));
    }
    for at in times {
        let whole = verify(&req, REGION, secret, at);
        let split = verify_head(&req, REGION, secret, at).and_then(|pending| pending.finish(&req));
        assert_eq!(whole, split, "verify differs from verify_head + finish at {at:?}");
        let _ = verify(&req, "eu-west-1", |_| None, at);
    }
    check_sign(&p);
}

/// `parse_amz_date` on any text; what it reads, `format_amz_date` writes back to the same time.
fn check_date(s: &str) {
    if let Some(secs) = parse_amz_date(s) {
        let text = format_amz_date(secs);
        // Past year 9999 the year has five digits, which the basic format cannot hold.
        if text.len() == 16 {
            assert_eq!(parse_amz_date(&text), Some(secs), "{s:?} read as {secs}, written as {text:?}");
        }
    }
}

/// Signs the request (when it is signable: token header names, a `host`, one `x-amz-date`
/// that parses, no `authorization`) and checks that it verifies at its date, and that a
/// changed body does not.
fn check_sign(p: &Parts) {
    let token = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !p.headers.iter().all(|(n, _)| token(n))
        || !p.headers.iter().any(|(n, _)| n == "host")
        || p.headers.iter().any(|(n, _)| n == "authorization")
        || p.headers.iter().filter(|(n, _)| n == "x-amz-date").count() != 1
    {
        return;
    }
    let Some(secs) = amz_date(p).and_then(|d| parse_amz_date(&d)) else { return };
    let auth = sign(&p.request(), "AKIDFUZZ", "secret", REGION, "iotdata").expect("a request with x-amz-date signs");
    let mut headers = p.headers.clone();
    headers.push(("authorization".into(), auth.clone()));
    let signed = Parts { headers, method: p.method.clone(), path: p.path.clone(), query: p.query.clone(), body: p.body.clone() };
    let at = UNIX_EPOCH + Duration::from_secs(secs);
    let key = |k: &str| (k == "AKIDFUZZ").then(|| "secret".to_string());
    let v = verify(&signed.request(), REGION, key, at).unwrap_or_else(|e| panic!("the request signed as {auth:?} does not verify: {e}"));
    assert_eq!((v.access_key.as_str(), v.region.as_str(), v.service.as_str()), ("AKIDFUZZ", REGION, "iotdata"));
    let mut body = signed.body.clone();
    body.push(b'!');
    let changed = Request { body: &body, ..signed.request() };
    assert_eq!(verify(&changed, REGION, key, at), Err(AuthError::BadSignature), "a changed body still verifies");
}
