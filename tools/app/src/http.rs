//! The HTTP interface (see the crate documentation for the routes and JSON records).

use std::sync::Arc;

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::db::{Database, DbError, Server};
use crate::metrics::{Metrics, OTHER_ROUTE};
use crate::requests::RequestId;

/// What every handler shares.
pub struct App {
    /// This host's name (as in hosts/topology.json).
    pub host_name: String,
    /// The visit log.
    pub database: Database,
    /// The counters behind `/metrics`.
    pub metrics: Metrics,
}

/// The route templates, also the `route` label values of the counters.
pub const ROUTES: [&str; 5] = ["/", "/visit", "/visits/{seq}", "/healthz", "/metrics"];

impl App {
    /// An application answering as `host_name`.
    pub fn new(host_name: String, database: Database) -> App {
        App {
            host_name,
            database,
            metrics: Metrics::new(ROUTES),
        }
    }
}

/// The router: every route counted by template and status; unknown paths answer 404
/// and count as `other`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(ROUTES[0], get(hello))
        .route(ROUTES[1], get(visit_by_get).post(visit_by_post))
        .route(ROUTES[2], get(read_visit))
        .route(ROUTES[3], get(healthz))
        .route(ROUTES[4], get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), count))
        .fallback(not_found)
        .with_state(app)
}

async fn count(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(OTHER_ROUTE, |path| path.as_str())
        .to_owned();
    let response = next.run(request).await;
    app.metrics.request(&route, response.status().as_u16());
    response
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    app.metrics
        .request(OTHER_ROUTE, StatusCode::NOT_FOUND.as_u16());
    error(
        StatusCode::NOT_FOUND,
        "no such route; see GET / for what this server answers".into(),
    )
}

/// A JSON error record.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"type": "error", "error": message}))).into_response()
}

/// A database failure: counted per server, logged, and answered 503 so that the load
/// balancer and clients see a temporary condition.
fn database_error(app: &App, failure: DbError) -> Response {
    app.metrics.database_error(failure.server());
    eprintln!("rampart-app: {failure}");
    error(StatusCode::SERVICE_UNAVAILABLE, failure.to_string())
}

#[derive(Deserialize)]
struct HelloQuery {
    format: Option<String>,
}

async fn hello(State(app): State<Arc<App>>, Query(query): Query<HelloQuery>) -> Response {
    match query.format.as_deref() {
        None | Some("text") => format!("rampart: served by {}\n", app.host_name).into_response(),
        Some("json") => Json(json!({"type": "hello", "host": app.host_name})).into_response(),
        Some(other) => bad_request(format!(
            "format {other:?} is not known (expected \"text\" or \"json\")"
        )),
    }
}

#[derive(Deserialize)]
struct VisitQuery {
    seq: Option<String>,
    /// The client's request id, stored with the visit ([`crate::requests`]).
    request: Option<String>,
}

/// A visit number from the request, or what was wrong with it.
fn parse_seq(text: &str, origin: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(seq) if seq > 0 => Ok(seq),
        _ => Err(format!(
            "{origin} is {text:?}; expected a visit number from 1 to {}",
            u64::MAX
        )),
    }
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

async fn visit_by_post(State(app): State<Arc<App>>, Query(query): Query<VisitQuery>) -> Response {
    let seq = query
        .seq
        .as_deref()
        .map(|text| parse_seq(text, "seq"))
        .transpose();
    let request = query.request.as_deref().map(RequestId::parse).transpose();
    match (seq, request) {
        (Ok(seq), Ok(request)) => record(&app, seq, request.as_ref()).await,
        (Err(message), _) | (_, Err(message)) => bad_request(message),
    }
}

/// Writes by GET exist for load tools that only send GETs (wrk); they must be
/// idempotent, so the visit number is required.
async fn visit_by_get(State(app): State<Arc<App>>, Query(query): Query<VisitQuery>) -> Response {
    let Some(text) = query.seq else {
        return bad_request(
            "GET /visit needs ?seq=N (a write by GET must be idempotent); POST /visit records a visit under the next free number".into(),
        );
    };
    match parse_seq(&text, "seq") {
        Ok(seq) => record(&app, Some(seq), None).await,
        Err(message) => bad_request(message),
    }
}

async fn record(app: &App, seq: Option<u64>, request: Option<&RequestId>) -> Response {
    match app
        .database
        .record_visit(seq, request, &app.host_name)
        .await
    {
        Ok((visit, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut body = visit_json(&visit, Server::Primary);
            body["created"] = json!(created);
            (status, Json(body)).into_response()
        }
        Err(failure) => database_error(app, failure),
    }
}

async fn read_visit(State(app): State<Arc<App>>, Path(seq): Path<String>) -> Response {
    let seq = match parse_seq(&seq, "the visit number in /visits/N") {
        Ok(seq) => seq,
        Err(message) => return bad_request(message),
    };
    match app.database.read_visit(seq).await {
        Ok((visit, server, replica_error)) => {
            if let Some(failure) = replica_error {
                app.metrics.database_error(failure.server());
                eprintln!("rampart-app: {failure} (read answered by the primary)");
            }
            match visit {
                Some(visit) => Json(visit_json(&visit, server)).into_response(),
                None => error(StatusCode::NOT_FOUND, format!("no visit {seq}")),
            }
        }
        Err(failure) => database_error(&app, failure),
    }
}

fn visit_json(visit: &crate::db::Visit, source: Server) -> serde_json::Value {
    let mut body = json!({"type": "visit"});
    if let (Some(body), Ok(serde_json::Value::Object(fields))) =
        (body.as_object_mut(), serde_json::to_value(visit))
    {
        body.extend(fields);
    }
    body["source"] = json!(source.label());
    body
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
