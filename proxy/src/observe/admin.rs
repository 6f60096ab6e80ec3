//! The admin HTTP server: `/metrics` for Prometheus, `/healthz` for load
//! balancers, and a small JSON API over the cache. Mutating endpoints take an
//! optional bearer token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::config::AdminLimits;
use crate::observe::operations;
use crate::shared::Shared;

/// The read buffer of one admin connection (hyper's minimum is 8 KiB): a
/// request head larger than this is refused.
const MAX_HEAD: usize = 16 << 10;

/// Serves admin requests until the task is aborted. At most
/// `admin_limits.max_connections` connections are served at once; one more is
/// closed as soon as it is accepted, so a flood costs no file descriptors.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let limits = shared.config.admin_limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.stats.limit_hit("admin_connections");
            debug!(%peer, "admin connection refused: too many open");
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(req, &shared).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %e, "admin connection ended");
            }
        });
    }
}

type Reply = Response<Full<Bytes>>;

async fn route(req: Request<Incoming>, shared: &Shared) -> Reply {
    let path = req.uri().path().to_string();
    let Some(allowed) = method_of(&path) else {
        return json_reply(StatusCode::NOT_FOUND, json!({"error": "no such endpoint"}));
    };
    if req.method().as_str() != allowed {
        let mut reply = json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": format!("{path} takes {allowed}")}),
        );
        reply
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        return reply;
    }
    if allowed == "POST" && !authorized(&req, shared) {
        return json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "a bearer token is required for this endpoint"}),
        );
    }
    match path.as_str() {
        "/metrics" => {
            shared.stats.refresh_cache(&shared.engine);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(shared.stats.encode())))
                .unwrap_or_default()
        }
        "/healthz" => healthz(shared).await,
        "/readyz" => readyz(shared).await,
        "/api/queries" => json_reply(StatusCode::OK, operations::queries(shared)),
        "/api/tables" => json_reply(StatusCode::OK, operations::tables(shared)),
        "/api/feed" => json_reply(StatusCode::OK, operations::feed(shared)),
        "/api/invalidate" => match body_json(req, shared.config.admin_limits).await {
            Ok(body) => invalidate(shared, &body),
            Err(reply) => reply,
        },
        "/api/release" => match body_json(req, shared.config.admin_limits).await {
            Ok(body) => release(shared, &body).await,
            Err(reply) => reply,
        },
        "/api/resume" => match body_json(req, shared.config.admin_limits).await {
            Ok(body) => match body.get("database").and_then(Value::as_str) {
                Some(database) => match operations::resume(shared, database) {
                    Ok(()) => json_reply(StatusCode::OK, json!({"resumed": database})),
                    Err(e) => json_reply(StatusCode::NOT_FOUND, json!({ "error": e })),
                },
                None => json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "expected {\"database\": \"name\"}"}),
                ),
            },
            Err(reply) => reply,
        },
        _ => match crate::maintenance::reload_policy(shared, "admin API") {
            Ok(policy) => json_reply(
                StatusCode::OK,
                json!({"status": "ok", "policy_hash": policy.hash_hex()}),
            ),
            Err(errors) => json_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"status": "error", "errors": errors.to_string()}),
            ),
        },
    }
}

/// The one method an endpoint takes; `None` for an unknown path.
fn method_of(path: &str) -> Option<&'static str> {
    match path {
        "/metrics" | "/healthz" | "/readyz" | "/api/queries" | "/api/tables" | "/api/feed" => {
            Some("GET")
        }
        "/api/invalidate" | "/api/reload" | "/api/release" | "/api/resume" => Some("POST"),
        _ => None,
    }
}

fn authorized(req: &Request<Incoming>, shared: &Shared) -> bool {
    let Some(token) = &shared.config.admin_token else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        // Only the token's length may leak through timing, not its bytes.
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

/// 200 when the upstream accepts a TCP connection, 503 otherwise.
/// Readiness, for load balancers that should stop sending new clients: 503
/// while the proxy drains (after SIGTERM), or while the upstream does not
/// answer a login attempt as the service account; 200 otherwise. `/healthz`
/// stays the cheap liveness check (a TCP connection to the upstream).
async fn readyz(shared: &Shared) -> Reply {
    let upstream = &shared.config.upstream;
    if *shared.shutdown.borrow() {
        return json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "draining", "upstream": upstream.address()}),
        );
    }
    let timeout = shared.config.connect_timeout.min(Duration::from_secs(5));
    match crate::liveness::probe(upstream, shared.upstream_tls.as_ref(), timeout).await {
        crate::liveness::Verdict::Alive => json_reply(
            StatusCode::OK,
            json!({"status": "ready", "upstream": upstream.address()}),
        ),
        crate::liveness::Verdict::Gone(why) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "upstream": upstream.address(), "error": why}),
        ),
    }
}

async fn healthz(shared: &Shared) -> Reply {
    let upstream = &shared.config.upstream;
    let attempt = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((upstream.host.as_str(), upstream.port)),
    )
    .await;
    match attempt {
        Ok(Ok(_)) => json_reply(
            StatusCode::OK,
            json!({"status": "ok", "upstream": upstream.address()}),
        ),
        Ok(Err(e)) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "upstream": upstream.address(), "error": e.to_string()}),
        ),
        Err(_) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "upstream": upstream.address(), "error": "timed out"}),
        ),
    }
}

/// `{"database": "name", "seconds": 60}` (seconds optional, 1 to 3600).
async fn release(shared: &Shared, body: &Value) -> Reply {
    let max = crate::catalog::MAX_OPERATOR_RELEASE.as_secs();
    let seconds = match body.get("seconds") {
        None => Some(operations::DEFAULT_RELEASE.as_secs()),
        Some(v) => v.as_u64().filter(|s| (1..=max).contains(s)),
    };
    let (Some(database), Some(seconds)) = (body.get("database").and_then(Value::as_str), seconds)
    else {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "expected {\"database\": \"name\", \"seconds\": 1..3600 (optional, default 60)}"}),
        );
    };
    match operations::release(shared, database, std::time::Duration::from_secs(seconds)).await {
        Ok(()) => json_reply(
            StatusCode::OK,
            json!({"released": database, "seconds": seconds}),
        ),
        Err(e) => json_reply(StatusCode::NOT_FOUND, json!({ "error": e })),
    }
}

/// `{"table": "schema.name"}`, `{"fingerprint": "..."}` or `{"all": true}`.
fn invalidate(shared: &Shared, body: &Value) -> Reply {
    let engine = &shared.engine;
    if body.get("all").and_then(Value::as_bool) == Some(true) {
        operations::invalidate_all(shared);
        return json_reply(StatusCode::OK, json!({"invalidated": "all"}));
    }
    if let Some(table) = body.get("table").and_then(Value::as_str) {
        return match operations::invalidate_table(shared, table) {
            Ok((name, relations)) => json_reply(
                StatusCode::OK,
                json!({"invalidated": name, "relations": relations}),
            ),
            Err(e) => json_reply(StatusCode::NOT_FOUND, json!({ "error": e })),
        };
    }
    if let Some(fingerprint) = body.get("fingerprint").and_then(Value::as_str) {
        let canonical = policies::canonical_fingerprint(fingerprint);
        let Some(id) = shared.stats.by_fingerprint.id_of(&canonical) else {
            return json_reply(
                StatusCode::NOT_FOUND,
                json!({"error": "no such fingerprint; copy it from GET /api/queries"}),
            );
        };
        let removed = engine.store.remove_where(|_, e| e.tag == id);
        return json_reply(StatusCode::OK, json!({"removed": removed}));
    }
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({"error": "expected {\"table\": \"schema.name\"}, {\"fingerprint\": \"...\"} or {\"all\": true}"}),
    )
}

/// The request body as JSON: at most `max_body` bytes, all of it within
/// `body_timeout`.
async fn body_json(req: Request<Incoming>, limits: AdminLimits) -> Result<Value, Reply> {
    let reading = Limited::new(req.into_body(), limits.max_body).collect();
    let bytes = match tokio::time::timeout(limits.body_timeout, reading).await {
        Err(_) => {
            return Err(json_reply(
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": format!("the body did not arrive within {:?}", limits.body_timeout)}),
            ))
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return Err(json_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": format!("request bodies are limited to {} bytes", limits.max_body)}),
            ))
        }
        Ok(Err(e)) => {
            return Err(json_reply(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("could not read the body: {e}")}),
            ))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        json_reply(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("the body is not JSON: {e}")}),
        )
    })
}

fn json_reply(status: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}
