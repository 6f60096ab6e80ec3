//! The admin HTTP server: `/metrics` for Prometheus, `/healthz` for load
//! balancers, and a small JSON API over the cache. Mutating endpoints take an
//! optional bearer token.

use std::collections::HashMap;
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
use crate::server::Shared;

const TOP_QUERIES: usize = 50;
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
        "/api/queries" => json_reply(StatusCode::OK, queries(shared)),
        "/api/tables" => json_reply(StatusCode::OK, tables(shared)),
        "/api/feed" => json_reply(StatusCode::OK, feed(shared)),
        "/api/invalidate" => match body_json(req, shared.config.admin_limits).await {
            Ok(body) => invalidate(shared, &body),
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
        "/api/invalidate" | "/api/reload" => Some("POST"),
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

pub(crate) fn queries(shared: &Shared) -> Value {
    let usage = shared.engine.store.entries_by_tag();
    let rows: Vec<Value> = shared
        .stats
        .by_fingerprint
        .top(TOP_QUERIES)
        .into_iter()
        .map(|(id, s)| {
            let cached = usage.get(&id);
            json!({
                "fingerprint": &*s.fingerprint,
                "hits": s.hits,
                "misses": s.misses,
                "bypasses": s.bypasses,
                "bypass_reason": s.last_bypass_reason,
                "mean_hit_ms": s.mean_hit_seconds() * 1e3,
                "mean_miss_ms": s.mean_miss_seconds() * 1e3,
                "cached_entries": cached.map_or(0, |u| u.entries),
                "cached_bytes": cached.map_or(0, |u| u.bytes),
            })
        })
        .collect();
    json!({ "queries": rows })
}

/// The change feed of each database followed: whether it streams, from
/// which slot, how far behind, and why it last failed.
pub(crate) fn feed(shared: &Shared) -> Value {
    let metrics = &shared.stats.feed;
    let databases: Vec<Value> = shared
        .engine
        .feed_board
        .databases()
        .into_iter()
        .map(|(database, feed)| {
            let db = [database.as_str()];
            let restarts: u64 = crate::feed::FeedError::REASONS
                .iter()
                .map(|&reason| {
                    metrics
                        .restarts
                        .with_label_values(&[&database, reason])
                        .get()
                })
                .sum();
            json!({
                "database": database,
                "up": metrics.up.with_label_values(&db).get() == 1,
                "slot": feed.slot,
                "transactions": metrics.transactions.with_label_values(&db).get(),
                "restarts": restarts,
                "lag_bytes": metrics.lag_bytes.with_label_values(&db).get(),
                "lag_seconds": metrics.lag_seconds.with_label_values(&db).get(),
                "last_error": feed.last_error,
            })
        })
        .collect();
    json!({ "mode": shared.config.change_feed.as_str(), "databases": databases })
}

pub(crate) fn tables(shared: &Shared) -> Value {
    let engine = &shared.engine;
    let mut entries: HashMap<u64, (u64, u64)> = HashMap::new();
    engine.store.for_each_entry(|_, entry| {
        for (id, _) in entry.generations.relations() {
            let e = entries.entry(id).or_default();
            e.0 += 1;
            e.1 += entry.size() as u64;
        }
    });
    let policy = engine.policy.load();
    let mut rows: Vec<Value> = engine
        .tables
        .all()
        .into_iter()
        .map(|(id, name)| {
            let (schema, table) = name.split_once('.').unwrap_or(("public", &name));
            let rule = policy.table(schema, table);
            let (count, bytes) = entries.get(&id).copied().unwrap_or_default();
            json!({
                "table": &*name,
                "database_index": id >> 32,
                "entries": count,
                "bytes": bytes,
                "invalidations": shared.stats.invalidations.with_label_values(&[&*name]).get(),
                "policy": {
                    "cache": rule.cache,
                    "ttl": policies::format_duration(rule.ttl),
                    "max_entry_size": policies::format_size(rule.max_entry_size),
                    "source": format!("{:?}", rule.source).to_lowercase(),
                },
            })
        })
        .collect();
    rows.sort_by(|a, b| a["table"].as_str().cmp(&b["table"].as_str()));
    json!({ "tables": rows })
}

/// `{"table": "schema.name"}`, `{"fingerprint": "..."}` or `{"all": true}`.
fn invalidate(shared: &Shared, body: &Value) -> Reply {
    let engine = &shared.engine;
    if body.get("all").and_then(Value::as_bool) == Some(true) {
        invalidate_all(shared);
        return json_reply(StatusCode::OK, json!({"invalidated": "all"}));
    }
    if let Some(table) = body.get("table").and_then(Value::as_str) {
        return match invalidate_table(shared, table) {
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

/// Invalidates everything and frees the memory at once.
pub(crate) fn invalidate_all(shared: &Shared) {
    shared
        .engine
        .invalidate(&crate::engine::WriteSet::Everything);
    shared.engine.store.clear();
}

/// Invalidates a table ("schema.name"; no schema means public) in every
/// database where it was seen. Returns its name and how many relations matched.
pub(crate) fn invalidate_table(shared: &Shared, table: &str) -> Result<(String, usize), String> {
    let q = policies::QualifiedName::parse(table)
        .map_err(|e| format!("bad table name {table:?}: {e}"))?;
    let name = format!("{}.{}", q.schema, q.name);
    let ids = shared.engine.tables.find(&name);
    if ids.is_empty() {
        return Err(format!("no cached query has read {name}"));
    }
    let n = ids.len();
    shared
        .engine
        .invalidate(&crate::engine::WriteSet::Relations(ids));
    Ok((name, n))
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
