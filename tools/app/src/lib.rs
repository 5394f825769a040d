//! # rampart-app
//!
//! The small application server behind nginx on every web host: the "real user workload"
//! for rampart's QPS alert, its database alerts and, later, failover. Users replace it
//! with their own; nginx only needs an upstream on `127.0.0.1:<port>`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | which host served the request: text, or JSON with `?format=json` |
//! | `POST /visit[?seq=N][&request=ID]` | records a visit on the **primary**; with `seq`, idempotently under that number; `request` is stored with it ([`requests`]: never deduplicated, so a replayed POST shows) |
//! | `GET /visit?seq=N` | the same write for plain HTTP load tools (idempotent, so a GET may do it) |
//! | `GET /visits/N` | reads visit N back, from the local **replica** when given, else (or when it lags) the primary |
//! | `GET /healthz` | `ok`: the process serves; it does not depend on the database, so a lost primary does not take every web host out of the load balancer |
//! | `GET /metrics` | request and error counters in Prometheus text format ([`metrics`]) |
//!
//! JSON answers always carry a `type` field: `hello`, `visit` or `error`:
//!
//! ```json
//! {"type":"hello","host":"<this host>"}
//! {"type":"visit","seq":42,"servedBy":"<this host>","visitedAt":"2025-01-01T12:00:00.000000Z","created":true,"source":"primary"}
//! {"type":"error","error":"database: primary 192.0.2.10:3306 did not answer within 2s; …"}
//! ```
//!
//! ## Where the primary is
//!
//! Writes go to the current primary, which a promotion (issue #9) moves. The answer is one
//! [`primary::PrimaryLocator`]: the deployed way is the **read_only probe**
//! (`--db-probe`, every database host of the topology): the primary is the one host whose
//! `SELECT @@global.read_only` answers 0, asked on the first write and again after any
//! failed write, and nothing is written while none or several answer 0
//! ([`primary::choose`]). Promotion flips exactly that flag and fencing keeps it unique, so
//! no file or DNS record has to follow a failover (docs/failover.md). A fixed
//! `ADDRESS:PORT` (`--db-primary`) and a runtime file re-read before every write
//! (`--db-primary-file`) remain for setups without failover.
//!
//! ## MariaDB client: `mysql_async`
//!
//! [`mysql_async`](https://github.com/blackbeam/mysql_async) is the maintained, pure-Rust,
//! tokio-native MySQL/MariaDB client (the async sibling of the `mysql` crate, with regular
//! releases since 2016). It supports TLS through rustls, so the connection is verified
//! against the rampart CA alone (built-in roots disabled) and the server's certificate name
//! is checked against the address we connect to, with no OpenSSL or libmysqlclient in the
//! build. `sqlx` would also do, but brings a query macro/compile-time-check layer this
//! two-statement application does not need; `mysql` (sync) would need a thread per
//! connection.
//!
//! ## Secrets
//!
//! The database password is read from a runtime file (docs/contracts.md, "Secrets":
//! `app-db-password`) whenever a connection pool is created; it never appears in
//! arguments, the environment or logs.

#![deny(missing_docs)]

pub mod db;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod primary;
pub mod requests;

/// A mutex's guard even when another request panicked while holding it: the counters and
/// pool maps it protects stay usable (a count may be one short), and one panicking request
/// must not take every later one down with it.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
