//! The application's own counters, served at `GET /metrics` in Prometheus text format.
//!
//! | metric | labels | counts |
//! |---|---|---|
//! | `rampart_app_requests_total` | `route`, `code` | answered requests, by route template and HTTP status |
//! | `rampart_app_errors_total` | `route` | answers with a 5xx status |
//! | `rampart_app_database_errors_total` | `server` (`primary`, `replica`) | failed database operations (a failed replica read that the primary then answered counts here, not as a request error) |
//!
//! Routes are the templates (`/visits/{seq}`), never raw paths, and unknown paths count as
//! `other`, so an outsider cannot grow the number of series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::db::Server;
use crate::lock;

/// The counters; cheap to update from every request.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    database_errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// The route label of requests that matched no route.
pub const OTHER_ROUTE: &str = "other";

impl Metrics {
    /// Counters that start at zero for every route and server, so that rates and alerts
    /// see the series before the first error.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str>) -> Metrics {
        let metrics = Metrics::default();
        {
            let mut errors = lock(&metrics.errors);
            for route in routes.into_iter().chain([OTHER_ROUTE]) {
                errors.insert(route.to_owned(), 0);
            }
        }
        {
            let mut database = lock(&metrics.database_errors);
            for server in [Server::Primary, Server::Replica] {
                database.insert(server.label(), 0);
            }
        }
        metrics
    }

    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
        if status >= 500 {
            *lock(&self.errors).entry(route.to_owned()).or_default() += 1;
        }
    }

    /// Counts one failed database operation.
    pub fn database_error(&self, server: Server) {
        *lock(&self.database_errors)
            .entry(server.label())
            .or_default() += 1;
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = lock(&self.requests);
        family(
            &mut out,
            "rampart_app_requests_total",
            "HTTP requests answered, by route template and status code.",
            requests.iter().map(|((route, code), count)| {
                (
                    format!("route=\"{}\",code=\"{code}\"", escape(route)),
                    *count,
                )
            }),
        );
        let errors = lock(&self.errors);
        family(
            &mut out,
            "rampart_app_errors_total",
            "HTTP requests answered with a 5xx status, by route template.",
            errors
                .iter()
                .map(|(route, count)| (format!("route=\"{}\"", escape(route)), *count)),
        );
        let database_errors = lock(&self.database_errors);
        family(
            &mut out,
            "rampart_app_database_errors_total",
            "Failed database operations, by server role.",
            database_errors
                .iter()
                .map(|(server, count)| (format!("server=\"{server}\""), *count)),
        );
        out
    }
}

/// One counter family: its HELP and TYPE lines, then a line per (labels, count).
fn family(out: &mut String, name: &str, help: &str, series: impl Iterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, count) in series {
        let _ = writeln!(out, "{name}{{{labels}}} {count}");
    }
}

/// Label values escaped as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_zeroes_first() {
        let metrics = Metrics::new(["/", "/visit"]);
        metrics.request("/", 200);
        metrics.request("/", 200);
        metrics.request("/visit", 503);
        metrics.database_error(Server::Primary);
        assert_eq!(
            metrics.render(),
            "# HELP rampart_app_requests_total HTTP requests answered, by route template and status code.\n\
             # TYPE rampart_app_requests_total counter\n\
             rampart_app_requests_total{route=\"/\",code=\"200\"} 2\n\
             rampart_app_requests_total{route=\"/visit\",code=\"503\"} 1\n\
             # HELP rampart_app_errors_total HTTP requests answered with a 5xx status, by route template.\n\
             # TYPE rampart_app_errors_total counter\n\
             rampart_app_errors_total{route=\"/\"} 0\n\
             rampart_app_errors_total{route=\"/visit\"} 1\n\
             rampart_app_errors_total{route=\"other\"} 0\n\
             # HELP rampart_app_database_errors_total Failed database operations, by server role.\n\
             # TYPE rampart_app_database_errors_total counter\n\
             rampart_app_database_errors_total{server=\"primary\"} 1\n\
             rampart_app_database_errors_total{server=\"replica\"} 0\n"
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
