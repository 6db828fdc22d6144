//! Invoking a function: one attempt runs the webhook or the command with the function's
//! timeout, holding one of its concurrency permits; asynchronous invocations ([`Mode::Event`])
//! wait for a permit and retry failures with a doubling backoff, synchronous ones
//! ([`Mode::RequestResponse`]) are refused when the function is at its limit and never retried.
//!
//! A function that fails (non-2xx webhook, non-zero exit, timeout, a result that is not JSON)
//! still produces an [`Invocation`]: its payload is Lambda's error document
//! (`{"errorMessage": ..., "errorType": ...}`) and `function_error` is `Unhandled`.

use crate::http::HttpError;
use crate::{Function, FunctionError, Functions, Target, resolve_name};
use bytes::Bytes;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How an invocation waits and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Lambda's `RequestResponse`: the caller waits for the result; no retries; refused with
    /// [`InvokeError::TooManyRequests`] when the function is at its concurrency limit.
    RequestResponse,
    /// Lambda's `Event`: waits for a permit and retries a failed attempt
    /// (`functions.async_retries` times).
    Event,
}

/// What an invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The function's JSON result, or the error document.
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<&'static str>,
}

impl Invocation {
    fn ok(payload: Bytes) -> Invocation {
        Invocation { payload, function_error: None }
    }

    fn failed(error_type: &str, message: impl Into<String>) -> Invocation {
        let doc = serde_json::json!({ "errorMessage": message.into(), "errorType": error_type });
        Invocation { payload: Bytes::from(doc.to_string()), function_error: Some("Unhandled") }
    }

    /// The error message of a failed invocation.
    pub fn error_message(&self) -> Option<String> {
        self.function_error?;
        let v: serde_json::Value = serde_json::from_slice(&self.payload).ok()?;
        v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string)
    }
}

/// Why a function could not be invoked at all.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The function is running as many invocations as it may.
    #[error("Rate Exceeded: function {0} is at its concurrency limit")]
    TooManyRequests(String),
    /// A command function whose program may not (or can no longer) run.
    #[error("{0}")]
    NotRunnable(String),
}

/// Stderr kept for an error message.
const STDERR_KEEP: usize = 4096;
/// The environment of every command: nothing inherited from Ferrite.
const COMMAND_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Functions {
    /// Invokes a function by name or ARN.
    pub async fn invoke(&self, name_or_arn: &str, payload: Bytes, mode: Mode) -> Result<Invocation, InvokeError> {
        let name = resolve_name(name_or_arn)?;
        let f = self.lookup(&name)?;
        let limit = self.limit(&name);
        let attempts = match mode {
            Mode::RequestResponse => 1,
            Mode::Event => 1 + self.config.async_retries,
        };
        let mut attempt = 0;
        loop {
            let permit = match mode {
                Mode::RequestResponse => limit.clone().try_acquire_owned().map_err(|_| InvokeError::TooManyRequests(name.clone()))?,
                Mode::Event => limit.clone().acquire_owned().await.map_err(|_| InvokeError::TooManyRequests(name.clone()))?,
            };
            let out = self.attempt(&f, &payload).await?;
            drop(permit);
            attempt += 1;
            if out.function_error.is_none() || attempt >= attempts {
                if let Some(m) = out.error_message() {
                    tracing::debug!(function = %name, attempts = attempt, error = %m, "function failed");
                }
                return Ok(out);
            }
            tokio::time::sleep(self.config.retry_backoff * 2u32.saturating_pow(attempt - 1)).await;
        }
    }

    async fn attempt(&self, f: &Function, payload: &Bytes) -> Result<Invocation, InvokeError> {
        let timeout = Duration::from_secs(u64::from(f.timeout_secs));
        let max = self.config.max_result_bytes;
        match &f.target {
            Target::Webhook { url } => {
                let headers = [("content-type".to_string(), "application/json".to_string()), ("x-ferrite-function".to_string(), f.name.clone())];
                Ok(match self.http.post(url, &headers, payload.clone(), timeout, max).await {
                    Ok(r) if r.truncated => Invocation::failed("Runtime.ResponseSizeTooLarge", format!("the result is larger than {max} bytes")),
                    Ok(r) if (200..300).contains(&r.status) => json_result(r.body),
                    Ok(r) => Invocation::failed("WebhookError", format!("the webhook answered HTTP {}: {}", r.status, snippet(&r.body))),
                    Err(HttpError::Timeout(_)) => timed_out(f),
                    Err(e) => Invocation::failed("WebhookError", e.to_string()),
                })
            }
            Target::Command { program } => {
                let exe = self.runnable(program).map_err(InvokeError::NotRunnable)?;
                Ok(run_command(f, &exe, payload, timeout, max).await)
            }
        }
    }
}

fn timed_out(f: &Function) -> Invocation {
    Invocation::failed("Sandbox.Timedout", format!("Task timed out after {}.00 seconds", f.timeout_secs))
}

/// The start of a remote body for an error message: at most 128 bytes, control characters
/// dropped (what another service answered is not echoed back whole).
fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(128)]);
    s.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_string()
}

/// A result that must be JSON (empty means `null`).
fn json_result(body: Bytes) -> Invocation {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Invocation::ok(Bytes::from_static(b"null"));
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => Invocation::ok(body),
        Err(e) => Invocation::failed("Runtime.InvalidResponse", format!("the function's result is not JSON ({e}): {}", snippet(&body))),
    }
}

/// Reads everything, keeping the first `keep` bytes; true when there was more.
async fn read_capped<R: AsyncRead + Unpin>(r: Option<R>, keep: usize) -> (Vec<u8>, bool) {
    let Some(mut r) = r else { return (Vec::new(), false) };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut over = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = keep.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                over |= n > room;
            }
        }
    }
    (out, over)
}

/// Runs a command function's program once: the event on stdin, the result on stdout.
async fn run_command(f: &Function, exe: &Path, payload: &Bytes, timeout: Duration, max: usize) -> Invocation {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env_clear()
        .env("PATH", COMMAND_PATH)
        .env("FERRITE_FUNCTION_NAME", &f.name)
        .current_dir(exe.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Invocation::failed("Runtime.ExitError", format!("cannot start {}: {e}", exe.display())),
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let write = async move {
            if let Some(mut s) = stdin {
                // A program that does not read its input closes the pipe: not an error.
                let _ = s.write_all(payload).await;
            }
        };
        let (_, out, err) = tokio::join!(write, read_capped(stdout, max), read_capped(stderr, STDERR_KEEP));
        (out, err, child.wait().await)
    };
    let finished = tokio::time::timeout(timeout, run).await;
    let (out, err, status) = match finished {
        Ok(r) => r,
        Err(_) => {
            let _ = child.start_kill();
            return timed_out(f);
        }
    };
    let stderr_text = String::from_utf8_lossy(&err.0).trim().to_string();
    match status {
        Ok(s) if s.success() => {
            if out.1 {
                return Invocation::failed("Runtime.ResponseSizeTooLarge", format!("the result is larger than {max} bytes"));
            }
            json_result(Bytes::from(out.0))
        }
        Ok(s) => {
            let how = match s.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            };
            let msg = if stderr_text.is_empty() { format!("Runtime exited with error: {how}") } else { format!("Runtime exited with error: {how}: {stderr_text}") };
            Invocation::failed("Runtime.ExitError", msg)
        }
        Err(e) => Invocation::failed("Runtime.ExitError", format!("waiting for {}: {e}", exe.display())),
    }
}
