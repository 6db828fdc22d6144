//! Tests of the registry and the invoker: names and ARNs, the allowed-directory rule, the clean
//! environment, failures, timeouts, concurrency limits and webhooks.

use super::*;
use bytes::Bytes;
use std::os::unix::fs::PermissionsExt;

struct Fixture {
    dir: PathBuf,
    functions: Arc<Functions>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str, tweak: impl FnOnce(&mut FunctionsConfig)) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ferrite-functions-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    let docs = Arc::new(Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
    let mut config = FunctionsConfig { allowed_command_dirs: vec![dir.join("bin")], allow_private_targets: true, ..FunctionsConfig::default() };
    tweak(&mut config);
    Fixture { functions: Functions::new(docs, config), dir }
}

fn script(path: &Path, body: &str) -> String {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn new(name: &str, location: &str) -> NewFunction {
    NewFunction { name: name.into(), location: location.into(), ..NewFunction::default() }
}

#[test]
fn names_and_arns_resolve_to_the_function_name() {
    assert_eq!(resolve_name("f-1").unwrap(), "f-1");
    assert_eq!(resolve_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn").unwrap(), "my_fn");
    assert_eq!(resolve_name("arn:aws:lambda:eu-west-1:000000000000:function:my_fn:$LATEST").unwrap(), "my_fn");
    assert_eq!(resolve_name("123456789012:function:abc").unwrap(), "abc");
    assert!(matches!(resolve_name("arn:aws:lambda:us-east-1:1:function:f:prod"), Err(FunctionError::NotFound(_))));
    assert!(matches!(resolve_name("arn:aws:s3:::bucket"), Err(FunctionError::Invalid(_))));
    assert!(matches!(resolve_name("bad name"), Err(FunctionError::Invalid(_))));
    assert_eq!(Target::parse("https://example.com/x").unwrap(), Target::Webhook { url: "https://example.com/x".into() });
    assert_eq!(Target::parse("file:///opt/f").unwrap(), Target::Command { program: "/opt/f".into() });
    assert!(Target::parse("rm -rf /").is_err());
    assert!(Target::parse("ftp://x/").is_err());
}

#[test]
fn registry_creates_lists_and_deletes() {
    let f = fixture("registry", |_| {});
    let created = f.functions.create(new("hook", "http://127.0.0.1:9/x")).unwrap();
    assert_eq!(created.timeout_secs, 3);
    assert!(matches!(f.functions.create(new("hook", "http://127.0.0.1:9/y")), Err(FunctionError::AlreadyExists(_))));
    assert_eq!(f.functions.get("arn:aws:lambda:us-east-1:123456789012:function:hook").unwrap(), created);
    assert_eq!(f.functions.list().unwrap().len(), 1);
    f.functions.delete("hook").unwrap();
    assert!(matches!(f.functions.get("hook"), Err(FunctionError::NotFound(_))));
    assert!(matches!(f.functions.delete("hook"), Err(FunctionError::NotFound(_))));
    let bad = NewFunction { timeout_secs: Some(901), ..new("t", "http://127.0.0.1:9/") };
    assert!(matches!(f.functions.create(bad), Err(FunctionError::Invalid(_))));
}

#[test]
fn commands_must_live_in_an_allowed_directory() {
    let f = fixture("allowed", |_| {});
    let inside = script(&f.dir.join("bin/ok.sh"), "cat");
    let outside = script(&f.dir.join("elsewhere/evil.sh"), "cat");
    f.functions.create(new("ok", &inside)).unwrap();
    let e = f.functions.create(new("evil", &outside)).unwrap_err().to_string();
    assert!(e.contains("not inside functions.allowed_command_dirs"), "{e}");
    // A symlink inside the allowed directory pointing out of it is resolved and refused.
    std::os::unix::fs::symlink(f.dir.join("elsewhere/evil.sh"), f.dir.join("bin/link.sh")).unwrap();
    assert!(f.functions.create(new("link", &f.dir.join("bin/link.sh").display().to_string())).is_err());
    // `..` cannot climb out either.
    assert!(f.functions.create(new("dots", &f.dir.join("bin/../elsewhere/evil.sh").display().to_string())).is_err());
    std::fs::write(f.dir.join("bin/plain.txt"), "x").unwrap();
    let e = f.functions.create(new("plain", &f.dir.join("bin/plain.txt").display().to_string())).unwrap_err().to_string();
    assert!(e.contains("not an executable"), "{e}");
    let none = fixture("none", |c| c.allowed_command_dirs.clear());
    let p = script(&none.dir.join("bin/ok.sh"), "cat");
    let e = none.functions.create(new("ok", &p)).unwrap_err().to_string();
    assert!(e.contains("disabled"), "{e}");
}

#[tokio::test]
async fn commands_get_the_event_on_stdin_in_a_clean_environment() {
    let f = fixture("run", |_| {});
    // SAFETY: no other thread of this test reads or writes the environment meanwhile.
    unsafe { std::env::set_var("FERRITE_SECRET_FOR_TEST", "leak") };
    let p = script(&f.dir.join("bin/env.sh"), r#"read -r ev; printf '{"event":%s,"env":"%s","pwd":"%s"}' "$ev" "$(env | sort | tr '\n' ' ')" "$(pwd)""#);
    f.functions.create(new("env", &p)).unwrap();
    let out = f.functions.invoke("env", Bytes::from_static(b"{\"a\":1}\n"), Mode::RequestResponse).await.unwrap();
    assert_eq!(out.function_error, None, "{:?}", out);
    let v: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
    assert_eq!(v["event"], serde_json::json!({"a": 1}));
    let env = v["env"].as_str().unwrap();
    assert!(!env.contains("FERRITE_SECRET_FOR_TEST"), "{env}");
    assert!(env.contains("FERRITE_FUNCTION_NAME=env"), "{env}");
    assert!(!env.contains("HOME="), "{env}");
    assert_eq!(v["pwd"], f.dir.join("bin").canonicalize().unwrap().display().to_string());
}

#[tokio::test]
async fn failures_timeouts_and_bad_results_are_function_errors() {
    let f = fixture("fail", |c| c.retry_backoff = Duration::from_millis(1));
    let p = script(&f.dir.join("bin/fail.sh"), "echo boom >&2; exit 3");
    f.functions.create(new("fail", &p)).unwrap();
    let out = f.functions.invoke("fail", Bytes::new(), Mode::RequestResponse).await.unwrap();
    assert_eq!(out.function_error, Some("Unhandled"));
    let m = out.error_message().unwrap();
    assert!(m.contains("exit status 3") && m.contains("boom"), "{m}");
    let p = script(&f.dir.join("bin/text.sh"), "echo not json");
    f.functions.create(new("text", &p)).unwrap();
    let out = f.functions.invoke("text", Bytes::new(), Mode::RequestResponse).await.unwrap();
    assert!(out.error_message().unwrap().contains("not JSON"));
    let p = script(&f.dir.join("bin/slow.sh"), "sleep 5");
    f.functions.create(NewFunction { timeout_secs: Some(1), ..new("slow", &p) }).unwrap();
    let started = std::time::Instant::now();
    let out = f.functions.invoke("slow", Bytes::new(), Mode::RequestResponse).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(out.error_message().unwrap(), "Task timed out after 1.00 seconds");
    // Asynchronous invocations retry: the script counts its runs in a file.
    let counter = f.dir.join("bin/count");
    let p = script(&f.dir.join("bin/retry.sh"), &format!("echo x >> {}; exit 1", counter.display()));
    f.functions.create(new("retry", &p)).unwrap();
    let out = f.functions.invoke("retry", Bytes::new(), Mode::Event).await.unwrap();
    assert_eq!(out.function_error, Some("Unhandled"));
    assert_eq!(std::fs::read_to_string(&counter).unwrap().lines().count(), 3);
    // A program removed from the allowed directory after creation no longer runs.
    std::fs::remove_file(f.dir.join("bin/fail.sh")).unwrap();
    assert!(matches!(f.functions.invoke("fail", Bytes::new(), Mode::RequestResponse).await, Err(InvokeError::NotRunnable(_))));
    assert!(matches!(f.functions.invoke("nope", Bytes::new(), Mode::RequestResponse).await, Err(InvokeError::Function(FunctionError::NotFound(_)))));
}

#[tokio::test]
async fn synchronous_invocations_beyond_the_limit_are_refused() {
    let f = fixture("limit", |c| c.max_concurrency = 1);
    let p = script(&f.dir.join("bin/slow.sh"), "sleep 1; echo '{}'");
    f.functions.create(new("slow", &p)).unwrap();
    let (a, b) = tokio::join!(
        f.functions.invoke("slow", Bytes::new(), Mode::RequestResponse),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            f.functions.invoke("slow", Bytes::new(), Mode::RequestResponse).await
        }
    );
    assert_eq!(a.unwrap().function_error, None);
    assert!(matches!(b, Err(InvokeError::TooManyRequests(_))));
}

#[tokio::test]
async fn webhooks_receive_the_event_and_answer_the_result() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fn", l.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).ends_with("{\"n\":2}") {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"n\":3}").await.unwrap();
        String::from_utf8_lossy(&got).to_string()
    });
    let f = fixture("webhook", |_| {});
    f.functions.create(new("hook", &url)).unwrap();
    let out = f.functions.invoke("hook", Bytes::from_static(b"{\"n\":2}"), Mode::RequestResponse).await.unwrap();
    assert_eq!(out, Invocation { payload: Bytes::from_static(b"{\"n\":3}"), function_error: None });
    let req = server.await.unwrap();
    assert!(req.contains("x-ferrite-function: hook"), "{req}");
}
