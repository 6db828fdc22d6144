//! The HTTP server: hyper over TCP or TLS, the operations endpoints (`/healthz`, `/readyz`,
//! `/metrics`), and for everything else: body limit, SigV4, dispatch by signing name and route,
//! and the rest-json response (request id, error type header).

use crate::service::{ApiRequest, Body};
use awsmodel::Protocol;
use awsmodel::route::Miss;
use crate::{Api, ApiError};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the API on `listener` (with TLS when `tls` is given) until `shutdown` turns true.
pub async fn serve(api: Arc<Api>, listener: TcpListener, tls: Option<TlsAcceptor>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(api.config.max_connections));
    loop {
        let (socket, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At most `api.max_connections` at once: past it a connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::info!(%peer, max = api.config.max_connections, "API connection refused: api.max_connections reached");
            drop(socket);
            continue;
        };
        let (api, tls, mut shutdown) = (api.clone(), tls.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(api.handle(req, peer).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(socket), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => r,
                        _ = shutdown.changed() => { conn.as_mut().graceful_shutdown(); conn.await }
                    }
                }
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(socket)).await {
                    Ok(Ok(stream)) => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            r = conn.as_mut() => r,
                            _ = shutdown.changed() => { conn.as_mut().graceful_shutdown(); conn.await }
                        }
                    }
                    _ => return,
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "API connection ended with an error");
            }
        });
    }
}

/// The service's own validation exception (from its model; `ValidationException` 400 when it
/// models none) for a request that does not fit the operation's input.
fn validation_error(model: &awsmodel::Service, e: awsmodel::bind::BindError) -> ApiError {
    ApiError::new(validation_code(model), e.to_string()).resolve(model)
}

/// The error type `model`'s service answers a request it cannot accept with.
fn validation_code(model: &awsmodel::Service) -> &'static str {
    // IAM and STS answer constraint violations with the query protocol's ValidationError.
    match model.validation_error.and_then(|id| model.shape(id).error) {
        _ if model.protocol == Protocol::Query => "ValidationError",
        Some(e) => e.code,
        None => "ValidationException",
    }
}

/// A handler's error in its service's terms: the shared input reads ([`crate::Input`]) refuse
/// with InvalidRequestException, which a service that has no such exception (Lambda) answers
/// as its own validation error.
fn in_service_terms(model: &awsmodel::Service, e: ApiError) -> ApiError {
    if e.error_type == "InvalidRequestException" && model.error_status(e.error_type).is_none() {
        return ApiError { error_type: validation_code(model), ..e }.resolve(model);
    }
    e.resolve(model)
}

/// A JSON answer laid out by the operation's output shape ([`awsmodel::output::serialize`]):
/// header and status-code members leave the body, members take their wire names, timestamps
/// their formats. A handler's default 200 becomes the operation's modeled success status.
fn lay_out(model: &awsmodel::Service, op: &awsmodel::Operation, mut r: crate::ApiResponse) -> crate::ApiResponse {
    if r.status == 200 {
        r.status = op.status;
    }
    if let Body::Json(serde_json::Value::Object(members)) = r.body {
        let a = awsmodel::output::serialize(model, op, members);
        r.status = a.status.unwrap_or(r.status);
        r.headers.extend(a.headers);
        r.body = Body::Json(a.body);
    }
    r
}

/// Whether an operation may answer this error type: one its model lists, one every operation
/// may answer (the service's validation error, throttling, internal failures), or Ferrite's own
/// (not implemented, a lost race between nodes).
fn modeled_error(model: &awsmodel::Service, op: &awsmodel::Operation, error_type: &str) -> bool {
    let listed = op.errors.iter().chain(model.validation_error.iter()).filter_map(|id| model.shape(*id).error).any(|e| e.code == error_type);
    listed || matches!(error_type, crate::error::NOT_IMPLEMENTED | crate::error::CONFLICT | "InternalFailureException" | "ThrottlingException" | "ValidationError")
}

fn request_id() -> String {
    awscore::id::uuid()
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
    r
}

impl Api {
    /// Handles one HTTP request.
    pub async fn handle(self: &Arc<Self>, req: http::Request<Incoming>, peer: std::net::SocketAddr) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let path = req.uri().path().to_string();
        if req.method() == http::Method::GET {
            match path.as_str() {
                "/healthz" => return text(StatusCode::OK, "text/plain", "ok\n".into()),
                "/readyz" => {
                    return if self.is_ready() {
                        text(StatusCode::OK, "text/plain", "ready\n".into())
                    } else {
                        text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "starting\n".into())
                    };
                }
                "/metrics" if self.config.metrics_from_anywhere || peer.ip().is_loopback() => {
                    return text(StatusCode::OK, "text/plain; version=0.0.4", self.render_metrics());
                }
                "/metrics" => {
                    let e = ApiError::new("AccessDeniedException", "/metrics is served to loopback clients only (api.metrics_from_anywhere)");
                    let mut r = text(StatusCode::FORBIDDEN, "application/json", e.body().to_string());
                    r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(e.error_type));
                    return r;
                }
                _ => {}
            }
        }
        let id = request_id();
        // The shape of an error answer: the signing service's protocol; for a request that is
        // not signed, a form body means the query protocol (STS, IAM).
        let form = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let protocol = match self.signing_service(&req).and_then(|s| self.routers.get(s.as_str())) {
            Some(r) => r.protocol(),
            None if form => Protocol::Query,
            None => Protocol::RestJson,
        };
        let (op, result) = self.dispatch(req, &id).await;
        let status = match &result {
            Ok(r) => r.status,
            Err(e) => e.status,
        };
        self.metrics.record(op, status, started.elapsed());
        tracing::debug!(operation = op, status, request_id = %id, elapsed_us = started.elapsed().as_micros() as u64, "API request");
        let mut response = match result {
            Ok(r) => {
                let mut resp = match r.body {
                    Body::Empty => Response::new(Full::new(Bytes::new())),
                    Body::Json(v) => {
                        let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
                        resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
                        resp
                    }
                    Body::Bytes { content_type, data } => {
                        let mut resp = Response::new(Full::new(data));
                        resp.headers_mut().insert("content-type", HeaderValue::from_static(content_type));
                        resp
                    }
                };
                for (k, v) in r.headers {
                    if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k), HeaderValue::try_from(v)) {
                        resp.headers_mut().insert(k, v);
                    }
                }
                *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
                resp
            }
            Err(e) if protocol == Protocol::Query => {
                let mut resp = Response::new(Full::new(Bytes::from(crate::iam::xml_error(&e, &id))));
                *resp.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                resp.headers_mut().insert("content-type", HeaderValue::from_static("text/xml"));
                resp
            }
            Err(e) => {
                let mut body = e.body();
                if protocol == Protocol::Json {
                    body["__type"] = serde_json::Value::String(e.error_type.to_string());
                }
                let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
                *resp.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
                resp.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(e.error_type));
                resp
            }
        };
        if let Ok(v) = HeaderValue::try_from(id) {
            response.headers_mut().insert("x-amzn-requestid", v);
        }
        response
    }

    /// The service named in a request's credential scope (`AKID/date/region/SERVICE/aws4_request`),
    /// read without verifying anything: it only picks the shape of an error answer.
    fn signing_service(&self, req: &http::Request<Incoming>) -> Option<String> {
        let credential = match req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            Some(auth) => auth.split("Credential=").nth(1)?.split(',').next()?.to_string(),
            None => req.uri().query()?.split('&').find_map(|p| p.strip_prefix("X-Amz-Credential=")).and_then(awsmodel::route::decode)?,
        };
        credential.split('/').nth(3).map(str::to_string)
    }

    /// Authenticates and routes a request; returns the operation name (for metrics) and the result.
    async fn dispatch(&self, req: http::Request<Incoming>, id: &str) -> (&'static str, Result<crate::ApiResponse, ApiError>) {
        let (parts, incoming) = req.into_parts();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let path = parts.uri.path();
        let query = parts.uri.query().unwrap_or("");
        // The cheap checks first, before a byte of the body is read: the signature's form, scope
        // and time, and a known access key.
        let head = identity::sigv4::Request { method: parts.method.as_str(), path, query, headers: &headers, body: &[] };
        let pending = match identity::sigv4::verify_head(&head, &self.config.region, |k| self.keys.secret(k), SystemTime::now()) {
            Ok(p) => p,
            Err(e) => return ("unauthenticated", Err(ApiError::new(e.aws_type(), e.to_string()).with_status(403))),
        };
        let body = match self.read_body(&parts.headers, incoming).await {
            Ok(b) => b,
            Err(e) => return ("unknown", Err(e)),
        };
        let signed = identity::sigv4::Request { body: &body, ..head };
        let caller = match pending.finish(&signed) {
            Ok(v) => v,
            Err(e) => return ("unauthenticated", Err(ApiError::new(e.aws_type(), e.to_string()).with_status(403))),
        };
        let Some(router) = self.routers.get(caller.service.as_str()) else {
            return ("unknown", Err(ApiError::new("UnknownServiceException", format!("Ferrite does not serve {:?}.", caller.service))));
        };
        let method = parts.method.as_str();
        let query: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((awsmodel::route::decode(k)?, awsmodel::route::decode(v)?))
            })
            .collect();
        let mut fields: Vec<(String, String)> = Vec::new();
        let matched = match router.find(method, path, &query, &headers) {
            Ok(m) => m,
            Err(Miss::NeedsAction) => {
                fields = crate::iam::form_fields(&body, &query).into_iter().collect();
                let action = fields.iter().find(|(k, _)| k == "Action").map_or("", |(_, v)| v.as_str());
                match router.action(action) {
                    Some(m) => m,
                    None => return ("unknown", Err(ApiError::new("InvalidAction", format!("Could not find operation {action:?}")))),
                }
            }
            Err(Miss::NoRoute) => {
                let e = ApiError::new("UnknownOperationException", format!("No {} operation answers {method} {path}.", caller.service));
                return ("unknown", Err(e));
            }
        };
        let (model, op) = (matched.service, matched.op.name);
        // The operation's parameters for IAM's resource: path labels, or the form fields.
        let params: HashMap<String, String> = if fields.is_empty() { matched.labels.iter().cloned().collect() } else { fields.iter().cloned().collect() };
        // Every operation goes through IAM: a root key may do anything, a user's key what its
        // policies allow.
        let who = match crate::iam::caller(&self.keys, &self.users, &caller.access_key) {
            Ok(w) => w,
            Err(e) => return ("unauthenticated", Err(e)),
        };
        if let Err(e) = crate::iam::authorize(&who, model, op, &params, &self.config.region, &self.config.account_id) {
            return (op, Err(e));
        }
        let bound = awsmodel::bind::Parts { labels: &matched.labels, query: &query, headers: &headers, body: &body, fields: &fields };
        let input = match awsmodel::bind::bind(model, matched.op, &bound) {
            Ok(i) => i,
            Err(e) => return (op, Err(validation_error(model, e))),
        };
        let Some(service) = self.services.get(model.name) else {
            return (op, Err(ApiError::not_implemented(model.name, op)));
        };
        let request = ApiRequest {
            op,
            model,
            members: input,
            params,
            body,
            caller,
            request_id: id.to_string(),
        };
        // An exception's status is the one the model gives it.
        let mut reply = service.call(request).await.map_err(|e| in_service_terms(model, e)).map(|r| lay_out(model, matched.op, r));
        // Debug builds (every test run) hold each error to the operation's modeled errors and
        // each answer to the model's output shape.
        if cfg!(debug_assertions)
            && let Err(e) = &reply
            && !modeled_error(model, matched.op, e.error_type)
        {
            tracing::error!(model = model.name, operation = op, error_type = e.error_type, "error type is not one the operation's model lists");
            reply = Err(ApiError::internal(format!("{}:{op} answered {}, which its model does not list", model.name, e.error_type)));
        }
        if cfg!(debug_assertions)
            && let Ok(crate::ApiResponse { body: Body::Json(v), .. }) = &reply
        {
            let mismatches = awsmodel::output::check(model, matched.op, v);
            if !mismatches.is_empty() {
                tracing::error!(model = model.name, operation = op, ?mismatches, "answer does not match the model's output shape");
                reply = Err(ApiError::internal(format!("The answer of {}:{op} does not match the model: {}", model.name, mismatches.join("; "))));
            }
        }
        (op, reply)
    }

    /// Reads a request's body: at most `api.max_body_bytes` (413, refused from Content-Length
    /// before reading when it says more), within `api.body_timeout_secs` (408), and only while
    /// the bytes being read before authentication stay within `api.max_pending_body_bytes` (429).
    async fn read_body(&self, headers: &http::HeaderMap, incoming: Incoming) -> Result<Bytes, ApiError> {
        let max = self.config.max_body_bytes;
        let too_large = || ApiError::new("RequestEntityTooLargeException", format!("The request body exceeds {max} bytes."));
        let declared = match headers.get(http::header::CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| ApiError::invalid("Content-Length is not a number"))?),
        };
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        // A body of unknown length may be as large as the limit allows.
        let reserve = declared.map_or(max, |n| n as usize);
        let _permit = if reserve == 0 {
            None
        } else {
            let kib = reserve.div_ceil(1024).min(u32::MAX as usize) as u32;
            match self.body_budget.clone().try_acquire_many_owned(kib) {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::info!(bytes = reserve, "request refused: api.max_pending_body_bytes in use");
                    return Err(ApiError::new("ThrottlingException", "Too many request bodies are being received; try again."));
                }
            }
        };
        match tokio::time::timeout(self.config.body_timeout, Limited::new(incoming, max).collect()).await {
            Err(_) => Err(ApiError::new("RequestTimeoutException", format!("The request body did not arrive within {} s.", self.config.body_timeout.as_secs()))),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(e)) => Err(ApiError::invalid(format!("The request body could not be read: {e}"))),
            Ok(Ok(b)) => Ok(b.to_bytes()),
        }
    }
}
