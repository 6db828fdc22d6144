//! The `lambda` service: the subset of the AWS Lambda API that manages and invokes Ferrite
//! functions, so boto3's `lambda` client and `aws lambda` work against Ferrite:
//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, DeleteFunction, Invoke.
//!
//! The code location maps onto Ferrite's two kinds of function: `Code.ImageUri` is either an
//! `http://`/`https://` URL (a webhook receiving the event as a POST) or `file:///absolute/path`
//! (a command: a program inside `functions.allowed_command_dirs`, run without a shell, with the
//! event on stdin). ZIP files, S3 code, layers and environment variables are refused with
//! InvalidParameterValueException; `Role`, `Runtime` and `Handler` are kept and shown as given;
//! `Timeout` (seconds, default 3) bounds each attempt. Invoke's `RequestResponse` answers the
//! function's JSON (with `X-Amz-Function-Error: Unhandled` and Lambda's error document when it
//! fails), `Event` answers 202 and runs the function in the background with retries, `DryRun`
//! answers 204.

use crate::service::{ApiRequest, ApiResponse, Body, BoxReply, Reply, Service};
use crate::{ApiError, pagination};
use bytes::Bytes;
use functions::{Function, FunctionError, Functions, InvokeError, Mode, NewFunction};
use serde_json::{Value, json};
use std::sync::Arc;

/// The Lambda-compatible functions service.
pub struct Lambda {
    functions: Arc<Functions>,
}

impl Lambda {
    pub fn new(functions: Arc<Functions>) -> Lambda {
        Lambda { functions }
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterValueException", message).with("Type", "User".into())
}

impl From<FunctionError> for ApiError {
    fn from(e: FunctionError) -> ApiError {
        match e {
            FunctionError::Invalid(m) => invalid(m),
            FunctionError::NotFound(m) => ApiError::new("ResourceNotFoundException", format!("Function not found: {m}")).with("Type", "User".into()),
            FunctionError::AlreadyExists(m) => ApiError::new("ResourceConflictException", format!("Function already exist: {m}")).with("Type", "User".into()),
            FunctionError::Store(e) => {
                tracing::error!(error = %e, "function store failure");
                ApiError::new("ServiceException", "An internal error occurred.")
            }
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> ApiError {
        match e {
            InvokeError::Function(e) => ApiError::from(e),
            InvokeError::TooManyRequests(m) => {
                ApiError::new("TooManyRequestsException", format!("Rate Exceeded: {m}")).with("Reason", "ConcurrentInvocationLimitExceeded".into())
            }
            InvokeError::NotRunnable(m) => ApiError::new("InvalidRuntimeException", m),
        }
    }
}

impl Service for Lambda {
    fn models(&self) -> &'static [&'static str] {
        &["lambda"]
    }

    fn call(&self, req: ApiRequest) -> BoxReply<'_> {
        Box::pin(async move {
            if req.op == "Invoke" {
                return self.invoke(req).await;
            }
            let functions = self.functions.clone();
            let op = req.op;
            match tokio::task::spawn_blocking(move || handle(&functions, &req)).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::error!(operation = op, error = %e, "functions handler failed");
                    Err(ApiError::new("ServiceException", "An internal error occurred."))
                }
            }
        })
    }
}

/// A FunctionConfiguration.
fn configuration(functions: &Functions, f: &Function) -> Value {
    json!({
        "FunctionName": f.name,
        "FunctionArn": functions.arn(&f.name),
        "Runtime": f.runtime,
        "Role": f.role,
        "Handler": f.handler,
        "CodeSize": 0,
        "Description": f.description,
        "Timeout": f.timeout_secs,
        "MemorySize": 128,
        "LastModified": functions::iso8601_millis(f.last_modified_ms),
        "CodeSha256": f.code_sha256,
        "Version": "$LATEST",
        "RevisionId": f.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Image",
        "Architectures": ["x86_64"],
    })
}

fn create(functions: &Functions, req: &ApiRequest) -> Reply {
    let body = req.input();
    let name = body.required("FunctionName")?;
    let role = body.required("Role")?;
    let code = body.obj("Code")?.ok_or_else(|| invalid("Code is required"))?;
    if code.keys().any(|k| ["ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion"].contains(&k)) {
        return Err(invalid(
            "Ferrite functions are webhooks or local commands: give Code.ImageUri as an http(s):// URL or a file:///absolute/path to a program",
        ));
    }
    let location = code.text("ImageUri")?.ok_or_else(|| invalid("Code.ImageUri is required (an http(s):// URL or a file:/// path)"))?;
    if let Some(Value::Object(env)) = body.value("Environment")
        && env.get("Variables").and_then(Value::as_object).is_some_and(|v| !v.is_empty())
    {
        return Err(invalid("Ferrite functions take no environment variables: commands run with a clean environment"));
    }
    if body.value("Layers").and_then(Value::as_array).is_some_and(|l| !l.is_empty()) {
        return Err(invalid("Ferrite functions have no layers"));
    }
    let timeout_secs = body.i64("Timeout")?.map(|t| u32::try_from(t).map_err(|_| invalid("Timeout must be a number of seconds"))).transpose()?;
    let tags = body.str_map("Tags")?.unwrap_or_default().into_iter().collect();
    let f = functions.create(NewFunction {
        name: functions::resolve_name(name)?,
        location: location.to_string(),
        description: body.str("Description")?.unwrap_or_default(),
        timeout_secs,
        role: role.to_string(),
        runtime: body.str("Runtime")?.unwrap_or_default(),
        handler: body.str("Handler")?.unwrap_or_default(),
        tags,
    })?;
    ApiResponse::json(configuration(functions, &f))
}

fn handle(functions: &Functions, req: &ApiRequest) -> Reply {
    match req.op {
        "CreateFunction" => create(functions, req),
        "GetFunction" => {
            let f = functions.get(req.input().required("FunctionName")?)?;
            ApiResponse::json(json!({
                "Configuration": configuration(functions, &f),
                "Code": {"RepositoryType": "Ferrite", "Location": f.target.location()},
                "Tags": f.tags,
            }))
        }
        "GetFunctionConfiguration" => {
            let f = functions.get(req.input().required("FunctionName")?)?;
            ApiResponse::json(configuration(functions, &f))
        }
        "ListFunctions" => {
            let size = req.input().int_in("MaxItems", 50, 1, 10_000)? as usize;
            let all = functions.list()?;
            let after = pagination::after(req.input().text("Marker")?)?;
            let page = awscore::page::Page::sorted(all, |f| f.name.clone(), true, after.as_deref(), size);
            let mut out = json!({ "Functions": page.items.iter().map(|f| configuration(functions, f)).collect::<Vec<_>>() });
            if let Some(t) = page.token() {
                out["NextMarker"] = json!(t);
            }
            ApiResponse::json(out)
        }
        "DeleteFunction" => {
            if req.input().text("Qualifier")?.is_some_and(|q| q != "$LATEST") {
                return Err(invalid("Ferrite functions have no versions or aliases"));
            }
            functions.delete(req.input().required("FunctionName")?)?;
            // Lambda answers 204 (its model says 200).
            Ok(ApiResponse { status: 204, body: Body::Empty, headers: Vec::new() })
        }
        "ListTags" => ApiResponse::json(json!({ "Tags": functions.get(req.input().required("Resource")?)?.tags })),
        "TagResource" => {
            let add: Vec<_> = req.input().str_map("Tags")?.unwrap_or_default().into_iter().collect();
            functions.tag(req.input().required("Resource")?, &add)?;
            Ok(ApiResponse { status: 204, body: Body::Empty, headers: Vec::new() })
        }
        "UntagResource" => {
            let keys = req.input().strs("TagKeys")?.unwrap_or_default();
            functions.untag(req.input().required("Resource")?, &keys)?;
            Ok(ApiResponse { status: 204, body: Body::Empty, headers: Vec::new() })
        }
        op => Err(ApiError::not_implemented("lambda", op)),
    }
}

impl Lambda {
    async fn invoke(&self, req: ApiRequest) -> Reply {
        let mut name = req.input().required("FunctionName")?.to_string();
        if let Some(q) = req.input().text("Qualifier")? {
            name = format!("{name}:{q}");
        }
        let payload = if req.body.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { req.body.clone() };
        if serde_json::from_slice::<Value>(&payload).is_err() {
            return Err(ApiError::new("InvalidRequestContentException", "Could not parse request body into json").with("Type", "User".into()));
        }
        let executed = vec![("x-amz-executed-version".to_string(), "$LATEST".to_string())];
        match req.input().text("InvocationType")?.unwrap_or("RequestResponse") {
            "RequestResponse" => {
                let out = self.functions.invoke(&name, payload, Mode::RequestResponse).await?;
                let mut headers = executed;
                if let Some(e) = out.function_error {
                    headers.push(("x-amz-function-error".into(), e.into()));
                }
                Ok(ApiResponse { status: 200, body: Body::Bytes { content_type: "application/json", data: out.payload }, headers })
            }
            "Event" => {
                // Resolve now so that a missing function is an error of this call.
                let f = self.functions.get(&name)?;
                let functions = self.functions.clone();
                tokio::spawn(async move {
                    if let Err(e) = functions.invoke(&f.name, payload, Mode::Event).await {
                        tracing::warn!(function = %f.name, error = %e, "asynchronous invocation failed");
                    }
                });
                Ok(ApiResponse { status: 202, body: Body::Empty, headers: executed })
            }
            "DryRun" => {
                self.functions.get(&name)?;
                Ok(ApiResponse { status: 204, body: Body::Empty, headers: executed })
            }
            other => Err(invalid(format!("InvocationType must be RequestResponse, Event or DryRun, not {other:?}"))),
        }
    }
}
