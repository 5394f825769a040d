//! The client: keys, values and transactions.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use etcd_client as etcd;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::config::{ClientConfig, Member};
use crate::{ConsensusError, Result};

/// A connection to the cluster: one channel per member, requests bounded by
/// [`ClientConfig::request_timeout`]. Cheap to clone; clones share the channels.
///
/// **Which member answers.** Requests go to the member that answered last; when it
/// fails they move on to the next, so one member down or paused costs at most one
/// attempt ([`ClientConfig::attempt_timeout`]) and no error where a retry is safe:
///
/// - reads, lease grants, renewals and revocations are retried on the other members
///   until the deadline, whatever the failure (they change nothing, or nothing that
///   matters when done twice);
/// - writes (put, delete, transactions) are retried only when the failure proves the
///   request was not applied: the connection could not be made, or the member answered
///   that it has no leader. When a write may have been applied (the member stopped
///   answering after the request left), it returns [`ConsensusError::Timeout`] or
///   [`ConsensusError::Unavailable`] at once: **the outcome is unknown**; read the key
///   back (a compare-and-swap that reports failure with the caller's own value and lease
///   in [`Swap::current`] did succeed earlier).
///
/// Every read is linearizable (it sees every write acknowledged before it started), so
/// it needs a quorum like a write. A member that has lost its leader refuses at once
/// (etcd's "no leader") rather than letting the request wait; with no quorum anywhere,
/// calls fail within the request timeout.
#[derive(Clone)]
pub struct Consensus {
    pub(crate) members: std::sync::Arc<Vec<(Member, etcd::Client)>>,
    /// Index of the member that answered last.
    preferred: std::sync::Arc<AtomicUsize>,
    pub(crate) request_timeout: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) urls: String,
}

/// Which failures a request may be retried on, on another member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Any unavailability: the request is a read, or harmless when applied twice.
    Always,
    /// Only when it was certainly not applied (no connection, "no leader").
    IfNotApplied,
}

/// How a failed attempt failed.
enum Failure {
    /// Certainly not applied: try another member.
    NotApplied(ConsensusError),
    /// Maybe applied: the member stopped answering after the request left.
    Unknown(ConsensusError),
    /// etcd refused the request itself: retrying cannot help.
    Refused(ConsensusError),
}

/// etcd's id of a lease (a key's lease, a compare on it; granted in [`crate::lease`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    /// Hexadecimal, as `etcdctl lease list` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// A key as etcd stores it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last write to it: what [`Expect::ModRevision`] compares.
    pub mod_revision: i64,
    /// Writes since creation (1 after the first).
    pub version: i64,
    /// The lease the key is attached to (deleted when it expires), if any.
    pub lease: Option<LeaseId>,
}

impl KeyValue {
    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    pub(crate) fn from_etcd(kv: &etcd::KeyValue) -> KeyValue {
        KeyValue {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
        }
    }
}

/// What a key must be for [`Consensus::compare_and_swap`] or
/// [`Consensus::compare_and_delete`] to go ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key does not exist.
    Absent,
    /// The key exists and its last write was at this revision (a value read earlier,
    /// unchanged since: the usual optimistic-concurrency check).
    ModRevision(i64),
    /// The key exists and holds exactly this value.
    Value(Vec<u8>),
    /// The key exists and is attached to this lease (the holder of a leader key).
    Lease(LeaseId),
}

/// The outcome of a conditional write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    /// Whether the condition held and the write happened.
    pub succeeded: bool,
    /// The cluster's revision after the transaction (the write's own revision when it
    /// succeeded).
    pub revision: i64,
    /// When the condition failed: the key as it is (`None`: absent), read in the same
    /// transaction, so the caller can retry or watch from `mod_revision + 1`.
    pub current: Option<KeyValue>,
}

/// One condition of a [`Txn`].
#[derive(Clone, Debug)]
pub struct Compare(etcd::Compare);

impl Compare {
    /// `key` does not exist.
    pub fn absent(key: &str) -> Compare {
        Compare(etcd::Compare::create_revision(
            key,
            etcd::CompareOp::Equal,
            0,
        ))
    }
    /// `key` exists.
    pub fn exists(key: &str) -> Compare {
        Compare(etcd::Compare::create_revision(
            key,
            etcd::CompareOp::Greater,
            0,
        ))
    }
    /// `key`'s last write was at `revision` (0: the key does not exist).
    pub fn mod_revision(key: &str, revision: i64) -> Compare {
        Compare(etcd::Compare::mod_revision(
            key,
            etcd::CompareOp::Equal,
            revision,
        ))
    }
    /// `key` holds exactly `value`.
    pub fn value(key: &str, value: impl Into<Vec<u8>>) -> Compare {
        Compare(etcd::Compare::value(key, etcd::CompareOp::Equal, value))
    }
    /// `key` is attached to `lease`.
    pub fn lease(key: &str, lease: LeaseId) -> Compare {
        Compare(etcd::Compare::lease(key, etcd::CompareOp::Equal, lease.0))
    }

    fn expect(key: &str, expect: &Expect) -> Compare {
        match expect {
            Expect::Absent => Compare::absent(key),
            Expect::ModRevision(revision) => Compare::mod_revision(key, *revision),
            Expect::Value(value) => Compare::value(key, value.clone()),
            Expect::Lease(lease) => Compare::lease(key, *lease),
        }
    }
}

/// One operation of a [`Txn`].
#[derive(Clone, Debug)]
pub struct Op(etcd::TxnOp);

impl Op {
    /// Writes `value` to `key`, attached to `lease` if given.
    pub fn put(key: &str, value: impl Into<Vec<u8>>, lease: Option<LeaseId>) -> Op {
        let options = lease.map(|l| etcd::PutOptions::new().with_lease(l.0));
        Op(etcd::TxnOp::put(key, value, options))
    }
    /// Deletes `key`.
    pub fn delete(key: &str) -> Op {
        Op(etcd::TxnOp::delete(key, None))
    }
    /// Reads `key`.
    pub fn get(key: &str) -> Op {
        Op(etcd::TxnOp::get(key, None))
    }
    /// Reads every key starting with `prefix`.
    pub fn get_prefix(prefix: &str) -> Op {
        Op(etcd::TxnOp::get(
            prefix,
            Some(etcd::GetOptions::new().with_prefix()),
        ))
    }
}

/// An atomic transaction: if every condition holds, the `then` operations, otherwise the
/// `otherwise` ones — all at one revision.
///
/// ```
/// use rampart_consensus::{Compare, Op, Txn};
/// // Bump the term and take the leader key in one step, only if the key is free and the
/// // term is still the one read before.
/// let txn = Txn::new()
///     .when([Compare::absent("/rampart/leader"), Compare::mod_revision("/rampart/term", 7)])
///     .then([Op::put("/rampart/leader", "web2", None), Op::put("/rampart/term", "4", None)])
///     .otherwise([Op::get("/rampart/leader")]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Txn {
    compares: Vec<Compare>,
    then: Vec<Op>,
    otherwise: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }
    /// Adds conditions (all must hold).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Txn {
        self.compares.extend(compares);
        self
    }
    /// Operations when every condition holds.
    pub fn then(mut self, ops: impl IntoIterator<Item = Op>) -> Txn {
        self.then.extend(ops);
        self
    }
    /// Operations otherwise.
    pub fn otherwise(mut self, ops: impl IntoIterator<Item = Op>) -> Txn {
        self.otherwise.extend(ops);
        self
    }

    fn into_etcd(self) -> etcd::Txn {
        etcd::Txn::new()
            .when(self.compares.into_iter().map(|c| c.0).collect::<Vec<_>>())
            .and_then(self.then.into_iter().map(|o| o.0).collect::<Vec<_>>())
            .or_else(self.otherwise.into_iter().map(|o| o.0).collect::<Vec<_>>())
    }
}

/// What one operation of a transaction returned, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    Put,
    /// How many keys were deleted.
    Delete(i64),
    /// The keys read (empty: absent).
    Get(Vec<KeyValue>),
    /// A nested transaction (this API builds none; listed for completeness) and whether
    /// its conditions held.
    Txn(bool),
}

/// The outcome of [`Consensus::txn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every condition held (the `then` branch ran).
    pub succeeded: bool,
    /// The cluster's revision after the transaction.
    pub revision: i64,
    /// One result per operation of the branch that ran.
    pub results: Vec<OpResult>,
}

impl Consensus {
    /// Connects to every member of `config` over TLS with its client certificate. The
    /// certificate files are read now (a missing or unreadable file is an error naming
    /// it); connections are made by the first request, where a wrong CA or a refused
    /// certificate surfaces as [`ConsensusError::Unavailable`].
    pub async fn connect(config: &ClientConfig) -> Result<Consensus> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| ConsensusError::ReadFile {
                path: path.to_path_buf(),
                source,
            })
        };
        let ca = read(&config.ca)?;
        let cert = read(&config.cert)?;
        let key = read(&config.key)?;
        let urls = config.urls();
        if config.members.is_empty() {
            return Err(ConsensusError::Connect {
                urls,
                detail: "no members given".into(),
            });
        }
        let tls = etcd::TlsOptions::new()
            .ca_certificate(etcd::Certificate::from_pem(ca))
            .identity(etcd::Identity::from_pem(cert, key));
        let options = etcd::ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(config.connect_timeout)
            // HTTP/2 pings find a dead connection (a paused or partitioned member) even
            // between requests, so the next request reconnects instead of waiting.
            .with_keep_alive(config.attempt_timeout, config.attempt_timeout)
            .with_keep_alive_while_idle(true)
            // A member without a leader answers "no leader" at once instead of queueing.
            .with_require_leader(true);
        let mut members = Vec::with_capacity(config.members.len());
        for member in &config.members {
            // One channel per member: etcd-client's own balancing keeps sending requests
            // to a member that refuses connections or stopped answering.
            let client = etcd::Client::connect([member.url.as_str()], Some(options.clone()))
                .await
                .map_err(|e| ConsensusError::Connect {
                    urls: member.url.clone(),
                    detail: e.to_string(),
                })?;
            members.push((member.clone(), client));
        }
        Ok(Consensus {
            members: std::sync::Arc::new(members),
            preferred: std::sync::Arc::new(AtomicUsize::new(0)),
            request_timeout: config.request_timeout,
            attempt_timeout: config.attempt_timeout,
            urls,
        })
    }

    /// Runs `attempt` against the members, starting with the one that answered last,
    /// within the request timeout, retrying on the next member as `retry` allows (see
    /// [`Consensus`]).
    pub(crate) async fn call<T, F, Fut>(
        &self,
        op: impl Into<String>,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(etcd::Client) -> Fut,
        Fut: Future<Output = Result<T, etcd::Error>>,
    {
        self.call_member(op, retry, |_, client| attempt(client))
            .await
            .map(|(_, value)| value)
    }

    /// [`Consensus::call`], telling `attempt` and the caller which member (index into
    /// [`Consensus::members`]) served the request: a stream stays on that member.
    pub(crate) async fn call_member<T, F, Fut>(
        &self,
        op: impl Into<String>,
        retry: Retry,
        mut attempt: F,
    ) -> Result<(usize, T)>
    where
        F: FnMut(usize, etcd::Client) -> Fut,
        Fut: Future<Output = Result<T, etcd::Error>>,
    {
        let op = op.into();
        let deadline = Instant::now() + self.request_timeout;
        let count = self.members.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut last = None;
        // Two rounds at most: a second chance for a member that was between leaders;
        // members that refuse at once (down, no leader) make this quick.
        for round in 0..2 * count {
            let index = (first + round) % count;
            if round == count {
                tokio::time::sleep(Duration::from_millis(200).min(remaining(deadline))).await;
            }
            let budget = remaining(deadline).min(self.attempt_timeout);
            if budget.is_zero() {
                break;
            }
            let (member, client) = &self.members[index];
            let failure = match tokio::time::timeout(budget, attempt(index, client.clone())).await {
                Ok(Ok(value)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((index, value));
                }
                Ok(Err(e)) => self.classify(&op, member, e),
                Err(_) => Failure::Unknown(ConsensusError::Timeout {
                    op: op.clone(),
                    after: budget,
                    urls: member.url.clone(),
                }),
            };
            // Whatever happened, the next request starts elsewhere.
            self.avoid(index);
            match failure {
                Failure::Refused(e) => return Err(e),
                Failure::Unknown(e) if retry == Retry::IfNotApplied => return Err(e),
                Failure::Unknown(e) | Failure::NotApplied(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ConsensusError::Timeout {
            op,
            after: self.request_timeout,
            urls: self.urls.clone(),
        }))
    }

    /// Makes the next request start after member `index` (it just failed).
    pub(crate) fn avoid(&self, index: usize) {
        let _ = self.preferred.compare_exchange(
            index,
            (index + 1) % self.members.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn classify(&self, op: &str, member: &Member, error: etcd::Error) -> Failure {
        let not_applied = match &error {
            // The connection could not be made (refused, TLS refused, connect timeout).
            etcd::Error::GRpcStatus(status) => {
                status.message().contains("no leader") || caused_by_connect(status)
            }
            etcd::Error::TransportError(_) => true,
            _ => false,
        };
        let error = ConsensusError::from_etcd(op, &member.url, error);
        if !error.is_unavailable() {
            Failure::Refused(error)
        } else if not_applied {
            Failure::NotApplied(error)
        } else {
            Failure::Unknown(error)
        }
    }

    /// The key, or `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .call(format!("get {key}"), Retry::Always, |mut c| async move {
                c.get(key, None).await
            })
            .await?;
        Ok(response.kvs().first().map(KeyValue::from_etcd))
    }

    /// Every key starting with `prefix`, in key order, and the revision they were read at
    /// (watch from `revision + 1` to see every later change).
    pub async fn get_prefix(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
        let response = self
            .call(
                format!("get {prefix}*"),
                Retry::Always,
                |mut c| async move {
                    c.get(prefix, Some(etcd::GetOptions::new().with_prefix()))
                        .await
                },
            )
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        Ok((
            response.kvs().iter().map(KeyValue::from_etcd).collect(),
            revision,
        ))
    }

    /// Writes `value` to `key` unconditionally (attached to `lease` if given); returns the
    /// write's revision.
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        lease: Option<LeaseId>,
    ) -> Result<i64> {
        let value = value.into();
        let options = lease.map(|l| etcd::PutOptions::new().with_lease(l.0));
        let response = self
            .call(format!("put {key}"), Retry::IfNotApplied, |mut c| {
                let (value, options) = (value.clone(), options.clone());
                async move { c.put(key, value, options).await }
            })
            .await?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        let response = self
            .call(
                format!("delete {key}"),
                Retry::IfNotApplied,
                |mut c| async move { c.delete(key, None).await },
            )
            .await?;
        Ok(response.deleted() > 0)
    }

    /// Writes `key` only if it does not exist (taking a free leader key). Same as
    /// [`Consensus::compare_and_swap`] with [`Expect::Absent`].
    pub async fn create(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        lease: Option<LeaseId>,
    ) -> Result<Swap> {
        self.compare_and_swap(key, Expect::Absent, value, lease)
            .await
    }

    /// Writes `value` to `key` (attached to `lease` if given) only if the key is as
    /// `expected`; otherwise writes nothing and returns the key as it is.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Expect,
        value: impl Into<Vec<u8>>,
        lease: Option<LeaseId>,
    ) -> Result<Swap> {
        let txn = Txn::new()
            .when([Compare::expect(key, &expected)])
            .then([Op::put(key, value, lease)])
            .otherwise([Op::get(key)]);
        self.conditional(key, txn).await
    }

    /// Deletes `key` only if it is as `expected` (a leader releasing its own key);
    /// otherwise returns the key as it is.
    pub async fn compare_and_delete(&self, key: &str, expected: Expect) -> Result<Swap> {
        let txn = Txn::new()
            .when([Compare::expect(key, &expected)])
            .then([Op::delete(key)])
            .otherwise([Op::get(key)]);
        self.conditional(key, txn).await
    }

    async fn conditional(&self, key: &str, txn: Txn) -> Result<Swap> {
        let result = self
            .txn_named(format!("compare-and-swap {key}"), txn)
            .await?;
        let current = match result.results.first() {
            Some(OpResult::Get(kvs)) if !result.succeeded => kvs.first().cloned(),
            _ => None,
        };
        Ok(Swap {
            succeeded: result.succeeded,
            revision: result.revision,
            current,
        })
    }

    /// Runs a transaction atomically.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.txn_named("transaction".to_string(), txn).await
    }

    async fn txn_named(&self, op: String, txn: Txn) -> Result<TxnResult> {
        let txn = txn.into_etcd();
        let response = self
            .call(op, Retry::IfNotApplied, |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        let results = response
            .op_responses()
            .into_iter()
            .map(|r| match r {
                etcd::TxnOpResponse::Put(_) => OpResult::Put,
                etcd::TxnOpResponse::Delete(d) => OpResult::Delete(d.deleted()),
                etcd::TxnOpResponse::Get(g) => {
                    OpResult::Get(g.kvs().iter().map(KeyValue::from_etcd).collect())
                }
                etcd::TxnOpResponse::Txn(t) => OpResult::Txn(t.succeeded()),
            })
            .collect();
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: response.header().map_or(0, |h| h.revision()),
            results,
        })
    }
}

/// Time left until `deadline`.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Whether a gRPC status comes from a connection that was never made (so the request
/// was never sent): tonic reports those as "tcp connect error" or with a connect error
/// among its causes.
fn caused_by_connect(status: &tonic::Status) -> bool {
    if status.message().contains("connect error") {
        return true;
    }
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(status);
    while let Some(error) = cause {
        if format!("{error:?}").starts_with("ConnectError") {
            return true;
        }
        cause = error.source();
    }
    false
}
