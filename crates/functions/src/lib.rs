//! Ferrite functions, the stand-in for AWS Lambda: a registry of named functions, each either a
//! webhook (`http://` or `https://` URL receiving the event JSON as a POST) or a local command (a
//! program receiving the event JSON on stdin and writing its JSON result to stdout), invoked with
//! a timeout, bounded concurrency per function and, for asynchronous invocations, retries.
//!
//! `arn:aws:lambda:{region}:{account}:function:{name}` (and the partial forms Lambda accepts)
//! resolve to the function `name`. Used by the rules engine's `lambda` action and
//! `aws_lambda()`, and by the `lambda` API service.
//!
//! Security: a command function may only run a program inside one of the directories the
//! operator lists in the configuration file (`functions.allowed_command_dirs`; none by default,
//! which disables command functions). The path is resolved (symlinks followed) and checked when
//! the function is created and again at every invocation; the program runs directly (no shell,
//! no arguments) with a clean environment (a fixed `PATH` and `FERRITE_FUNCTION_NAME`), in its
//! own directory. So the API can choose among programs the operator installed, never make
//! Ferrite run an arbitrary command line.
//!
//! Functions are documents of kind `function` in `store::Documents`, read at every invocation
//! (no cache: a change by `ferrite functions`, the API or another node counts at once).

pub mod http;
mod invoke;
mod time;

pub use invoke::{Invocation, InvokeError, Mode};
pub use time::iso8601_millis;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{DocOp, Documents, StoreError};

const KIND: &str = "function";


/// Settings from the configuration file.
#[derive(Debug, Clone)]
pub struct FunctionsConfig {
    /// Directories whose programs command functions may run (empty: no command functions).
    pub allowed_command_dirs: Vec<PathBuf>,
    /// Invocations of one function running at once.
    pub max_concurrency: usize,
    /// Retries of a failed asynchronous invocation (Lambda retries twice).
    pub async_retries: u32,
    /// Delay before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Largest result (stdout or response body) accepted.
    pub max_result_bytes: usize,
    /// Whether webhooks (and the rules' http actions) may reach loopback, private and
    /// link-local addresses ([`http::is_public`]).
    pub allow_private_targets: bool,
    /// ARNs are `arn:aws:lambda:{region}:{account_id}:function:{name}`.
    pub region: String,
    pub account_id: String,
}

impl Default for FunctionsConfig {
    fn default() -> FunctionsConfig {
        FunctionsConfig {
            allowed_command_dirs: Vec::new(),
            max_concurrency: 8,
            async_retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_result_bytes: 6 * 1024 * 1024,
            allow_private_targets: false,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        }
    }
}

/// What a function runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    /// POST the event to this URL; the response body is the result.
    Webhook { url: String },
    /// Run this program (absolute path) with the event on stdin; stdout is the result.
    Command { program: PathBuf },
}

impl Target {
    /// Reads a code location: an `http(s)://` URL is a webhook; an absolute path (or a
    /// `file://` URL) is a command.
    pub fn parse(location: &str) -> Result<Target, FunctionError> {
        let l = location.trim();
        if l.starts_with("http://") || l.starts_with("https://") {
            http::parse_url(l).map_err(|_| FunctionError::Invalid(format!("{l:?} is not a valid webhook URL")))?;
            return Ok(Target::Webhook { url: l.to_string() });
        }
        let path = l.strip_prefix("file://").unwrap_or(l);
        if path.starts_with('/') {
            return Ok(Target::Command { program: PathBuf::from(path) });
        }
        Err(FunctionError::Invalid(format!(
            "the code location {l:?} must be an http:// or https:// URL (a webhook) or an absolute path to a program (a command)"
        )))
    }

    /// The location as written (URL or `file://` path).
    pub fn location(&self) -> String {
        match self {
            Target::Webhook { url } => url.clone(),
            Target::Command { program } => format!("file://{}", program.display()),
        }
    }

    /// `webhook` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook { .. } => "webhook",
            Target::Command { .. } => "command",
        }
    }
}

/// A stored function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    pub target: Target,
    #[serde(default)]
    pub description: String,
    /// Seconds one attempt may take.
    pub timeout_secs: u32,
    /// Kept and shown as given (Lambda requires an execution role).
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub handler: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub last_modified_ms: i64,
    /// Base64 SHA-256 of the code location (Lambda's CodeSha256).
    pub code_sha256: String,
    pub revision_id: String,
}

/// What creating a function needs.
#[derive(Debug, Clone, Default)]
pub struct NewFunction {
    pub name: String,
    /// A code location for [`Target::parse`].
    pub location: String,
    pub description: String,
    /// Default 3, at most 900 (Lambda's limits).
    pub timeout_secs: Option<u32>,
    pub role: String,
    pub runtime: String,
    pub handler: String,
    pub tags: BTreeMap<String, String>,
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// A bad name, location or setting.
    #[error("{0}")]
    Invalid(String),
    /// No such function.
    #[error("Function not found: {0}")]
    NotFound(String),
    /// A function of that name exists.
    #[error("Function already exist: {0}")]
    AlreadyExists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The registry of functions and their invoker.
pub struct Functions {
    docs: Arc<Documents>,
    config: FunctionsConfig,
    limits: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    http: http::HttpClient,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Checks a function name as Lambda does: 1 to 64 letters, digits, hyphens or underscores.
pub fn validate_name(name: &str) -> Result<(), FunctionError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(FunctionError::Invalid(format!(
            "function name {name:?} must be 1 to 64 letters, digits, hyphens or underscores"
        )));
    }
    Ok(())
}

/// The function name in a name, a full ARN (`arn:aws:lambda:{region}:{account}:function:{name}`)
/// or a partial ARN (`{account}:function:{name}`), with an optional `:$LATEST` qualifier.
pub fn resolve_name(name_or_arn: &str) -> Result<String, FunctionError> {
    let s = name_or_arn.trim();
    let rest = if let Some(r) = s.strip_prefix("arn:") {
        // arn:{partition}:lambda:{region}:{account}:function:{name}[:{qualifier}]
        let parts: Vec<&str> = r.splitn(6, ':').collect();
        match parts.as_slice() {
            [_, "lambda", _, _, "function", rest] => *rest,
            _ => return Err(FunctionError::Invalid(format!("{s:?} is not a Lambda function ARN"))),
        }
    } else if let Some((_, rest)) = s.split_once(":function:") {
        rest
    } else {
        s
    };
    let (name, qualifier) = match rest.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (rest, None),
    };
    if let Some(q) = qualifier
        && q != "$LATEST"
    {
        return Err(FunctionError::NotFound(format!("{name}:{q} (Ferrite functions have no versions or aliases)")));
    }
    validate_name(name)?;
    Ok(name.to_string())
}

fn sha256_b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

use awscore::id::uuid as random_uuid;

use awscore::clock::now_ms;

impl Functions {
    /// The registry over `docs`.
    pub fn new(docs: Arc<Documents>, config: FunctionsConfig) -> Arc<Functions> {
        let http = http::HttpClient::new(config.allow_private_targets);
        Arc::new(Functions { docs, config, limits: Mutex::new(HashMap::new()), http })
    }

    /// The settings in force.
    pub fn config(&self) -> &FunctionsConfig {
        &self.config
    }

    /// The shared HTTP client (webhooks; the rules engine's `http` action uses it too).
    pub fn http(&self) -> &http::HttpClient {
        &self.http
    }

    /// `arn:aws:lambda:{region}:{account}:function:{name}`.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.config.region, self.config.account_id)
    }

    /// Creates a function (a command's program must be runnable under the allowed directories).
    pub fn create(&self, new: NewFunction) -> Result<Function, FunctionError> {
        validate_name(&new.name)?;
        let target = Target::parse(&new.location)?;
        if let Target::Command { program } = &target {
            self.runnable(program).map_err(FunctionError::Invalid)?;
        }
        let timeout_secs = new.timeout_secs.unwrap_or(3);
        if !(1..=900).contains(&timeout_secs) {
            return Err(FunctionError::Invalid(format!("Timeout must be from 1 to 900 seconds, not {timeout_secs}")));
        }
        if new.description.len() > 256 {
            return Err(FunctionError::Invalid("Description must be at most 256 characters".into()));
        }
        let tags = awscore::tags::initial(&new.tags.into_iter().collect::<Vec<_>>()).map_err(|e| FunctionError::Invalid(e.to_string()))?;
        if self.docs.get(KIND, &new.name)?.is_some() {
            return Err(FunctionError::AlreadyExists(new.name));
        }
        let f = Function {
            code_sha256: sha256_b64(&target.location()),
            name: new.name,
            target,
            description: new.description,
            timeout_secs,
            role: new.role,
            runtime: new.runtime,
            handler: new.handler,
            tags,
            last_modified_ms: now_ms(),
            revision_id: random_uuid(),
        };
        let value = serde_json::to_string(&f).map_err(|e| FunctionError::Invalid(e.to_string()))?;
        self.docs.apply(&[DocOp::Put { kind: KIND, key: f.name.clone(), value }])?;
        Ok(f)
    }

    /// A function by name or ARN, from the store.
    pub fn get(&self, name_or_arn: &str) -> Result<Function, FunctionError> {
        let name = resolve_name(name_or_arn)?;
        let v = self.docs.get(KIND, &name)?.ok_or_else(|| FunctionError::NotFound(self.arn(&name)))?;
        serde_json::from_str(&v).map_err(|e| FunctionError::Invalid(format!("stored function {name} is unreadable: {e}")))
    }

    /// Every function, by name.
    pub fn list(&self) -> Result<Vec<Function>, FunctionError> {
        Ok(self
            .docs
            .load(KIND)?
            .into_iter()
            .filter_map(|(k, v)| match serde_json::from_str(&v) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(function = %k, error = %e, "unreadable stored function skipped");
                    None
                }
            })
            .collect())
    }

    /// Adds or replaces tags of a function (by name or ARN), as Lambda's TagResource does.
    pub fn tag(&self, name_or_arn: &str, add: &[(String, String)]) -> Result<(), FunctionError> {
        let arn = self.arn(&resolve_name(name_or_arn)?);
        self.retag(name_or_arn, |t| awscore::tags::tag(t, add, &arn))
    }

    /// Removes tags of a function (by name or ARN); absent keys are no error.
    pub fn untag(&self, name_or_arn: &str, keys: &[String]) -> Result<(), FunctionError> {
        self.retag(name_or_arn, |t| awscore::tags::untag(t, keys))
    }

    fn retag(
        &self,
        name_or_arn: &str,
        change: impl FnOnce(&awscore::tags::Tags) -> Result<awscore::tags::Tags, awscore::tags::TagError>,
    ) -> Result<(), FunctionError> {
        let mut f = self.get(name_or_arn)?;
        // Lambda answers a tag over its limit as an invalid parameter too.
        f.tags = change(&f.tags).map_err(|e| FunctionError::Invalid(e.to_string()))?;
        let value = serde_json::to_string(&f).map_err(|e| FunctionError::Invalid(e.to_string()))?;
        self.docs.apply(&[DocOp::Put { kind: KIND, key: f.name.clone(), value }])?;
        Ok(())
    }

    /// Deletes a function.
    pub fn delete(&self, name_or_arn: &str) -> Result<(), FunctionError> {
        let name = resolve_name(name_or_arn)?;
        if self.docs.get(KIND, &name)?.is_none() {
            return Err(FunctionError::NotFound(self.arn(&name)));
        }
        self.docs.apply(&[DocOp::Delete { kind: KIND, key: name.clone() }])?;
        Ok(())
    }

    /// A function for invocation, as stored now.
    fn lookup(&self, name: &str) -> Result<Arc<Function>, FunctionError> {
        self.get(name).map(Arc::new)
    }

    /// The program a command function may run: the canonical path of `program`, which must
    /// be an executable regular file inside one of the allowed directories.
    pub fn runnable(&self, program: &Path) -> Result<PathBuf, String> {
        use std::os::unix::fs::PermissionsExt;
        if self.config.allowed_command_dirs.is_empty() {
            return Err("command functions are disabled: the configuration lists no functions.allowed_command_dirs".into());
        }
        if !program.is_absolute() {
            return Err(format!("the program {} must be an absolute path", program.display()));
        }
        let exe = program.canonicalize().map_err(|e| format!("the program {} cannot be resolved: {e}", program.display()))?;
        let allowed = self.config.allowed_command_dirs.iter().filter_map(|d| d.canonicalize().ok()).any(|d| exe.starts_with(&d));
        if !allowed {
            return Err(format!("the program {} is not inside functions.allowed_command_dirs", exe.display()));
        }
        let meta = std::fs::metadata(&exe).map_err(|e| format!("the program {}: {e}", exe.display()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!("the program {} is not an executable file", exe.display()));
        }
        Ok(exe)
    }

    /// The concurrency limit of one function.
    fn limit(&self, name: &str) -> Arc<tokio::sync::Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.entry(name.to_string()).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrency.max(1)))).clone()
    }
}

#[cfg(test)]
mod tests;
