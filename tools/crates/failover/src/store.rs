//! The etcd operations failover needs, as blocking calls with explicit timeouts.
//!
//! The agent is a plain loop that also talks to MariaDB through a blocking client, so the
//! asynchronous `etcd-client` runs on a runtime owned here and every call is bounded by
//! [`StoreConfig::op_timeout`]: an etcd that does not answer is an error after that time,
//! never a hang. Requests carry `require_leader`, so a member cut off from the majority
//! refuses at once instead of serving stale reads or accepting renewals it cannot commit.
//!
//! Only what failover uses is here: a consistent read of a key prefix, transactions with
//! compare-and-swap, leases (grant, keep-alive, revoke) and member health. When the
//! cluster's shared etcd crate lands, this module is the one to replace.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp,
};

/// Where etcd is and how to authenticate to it.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Client URLs of every member (`https://10.42.0.10:2379`); requests go to any that
    /// answers, so losing one member costs nothing.
    pub endpoints: Vec<String>,
    /// CA, client certificate and key (PEM files) for `https://` endpoints.
    pub tls: Option<StoreTls>,
    /// Bound of every request, connection included.
    pub op_timeout: Duration,
}

/// The files of etcd's client-certificate authentication.
#[derive(Clone, Debug)]
pub struct StoreTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why an etcd operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("etcd: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd: no member of {endpoints} answered within {timeout:?}")]
    Timeout {
        endpoints: String,
        timeout: Duration,
    },
    #[error("etcd: {endpoints}: {message}")]
    Failed { endpoints: String, message: String },
    #[error("etcd: cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
}

/// One key as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
}

/// A consistent read of every key under a prefix.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub entries: Vec<Entry>,
}

impl Snapshot {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A condition of a transaction.
#[derive(Clone, Debug)]
pub enum Condition {
    /// The key does not exist.
    Absent(String),
    /// The key was last changed at this revision (0: it does not exist).
    ModRevision(String, i64),
}

/// A change of a transaction.
#[derive(Clone, Debug)]
pub enum Change {
    Put {
        key: String,
        value: Vec<u8>,
        /// Attach to this lease (the key disappears with it).
        lease: Option<i64>,
    },
    Delete(String),
}

/// One member's answer to a status request.
#[derive(Clone, Debug)]
pub struct MemberHealth {
    pub endpoint: String,
    pub answered: Result<MemberStatus, String>,
}

#[derive(Clone, Debug)]
pub struct MemberStatus {
    pub member_id: u64,
    pub leader_id: u64,
    pub raft_term: u64,
    pub version: String,
}

/// A connection to etcd: one client per member, used one at a time. A request goes to the
/// member that answered last; when it fails (refused, no leader, no answer within the op
/// timeout) the next member is tried, so a dead or cut-off member costs one attempt, not
/// every request (a balanced channel keeps picking it).
pub struct Store {
    config: StoreConfig,
    runtime: tokio::runtime::Runtime,
    clients: Vec<Option<Client>>,
    /// The member that answered last.
    current: usize,
    /// The open keep-alive stream, per lease (on the member it was opened on).
    keepers: Vec<(i64, LeaseKeeper, LeaseKeepAliveStream)>,
}

impl Store {
    /// A store for `config`; connects on first use, so an unreachable etcd is an error of
    /// the operation, not of start-up.
    pub fn new(config: StoreConfig) -> Result<Store, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        let members = config.endpoints.len();
        Ok(Store {
            config,
            runtime,
            clients: (0..members).map(|_| None).collect(),
            current: 0,
            keepers: Vec::new(),
        })
    }

    /// The endpoints, one URL each.
    pub fn endpoint_urls(&self) -> &[String] {
        &self.config.endpoints
    }

    pub fn endpoints(&self) -> String {
        self.config.endpoints.join(",")
    }

    fn options(&self) -> Result<ConnectOptions, StoreError> {
        let timeout = self.config.op_timeout;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout)
            .with_require_leader(true)
            // HTTP/2 pings find a dead connection in about a second, not at the next
            // request's timeout.
            .with_keep_alive(Duration::from_millis(500), timeout)
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &self.config.tls {
            let read = |path: &PathBuf| {
                std::fs::read(path).map_err(|source| StoreError::Read {
                    path: path.clone(),
                    source,
                })
            };
            let ca = Certificate::from_pem(read(&tls.ca)?);
            let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
            options = options.with_tls(TlsOptions::new().ca_certificate(ca).identity(identity));
        }
        Ok(options)
    }

    /// The client of member `index`, connecting first if needed.
    fn client(&mut self, index: usize) -> Result<Client, StoreError> {
        if let Some(client) = &self.clients[index] {
            return Ok(client.clone());
        }
        let timeout = self.config.op_timeout;
        let endpoint = self.config.endpoints[index].clone();
        let options = self.options()?;
        let connect = Client::connect([endpoint.clone()], Some(options));
        let client = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, connect).await })
            .map_err(|_| StoreError::Timeout {
                endpoints: endpoint.clone(),
                timeout,
            })?
            .map_err(|e| StoreError::Failed {
                endpoints: endpoint.clone(),
                message: format!("connecting: {e}"),
            })?;
        self.clients[index] = Some(client.clone());
        Ok(client)
    }

    /// Runs one request, each attempt bounded by the op timeout: on the member that
    /// answered last, then on the others in turn. A failed member's connection is
    /// dropped, so it is dialled afresh when its turn comes again.
    fn call<T, F, Fut>(&mut self, what: &str, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let timeout = self.config.op_timeout;
        let members = self.config.endpoints.len();
        let mut failures = Vec::new();
        for attempt in 0..members {
            let index = (self.current + attempt) % members;
            let endpoint = self.config.endpoints[index].clone();
            let outcome = match self.client(index) {
                Err(e) => Err(e.to_string()),
                Ok(client) => match self
                    .runtime
                    .block_on(async { tokio::time::timeout(timeout, f(client)).await })
                {
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(value)) => Ok(value),
                },
            };
            match outcome {
                Ok(value) => {
                    self.current = index;
                    return Ok(value);
                }
                Err(message) => {
                    self.clients[index] = None;
                    failures.push(format!("{endpoint}: {message}"));
                }
            }
        }
        Err(StoreError::Failed {
            endpoints: self.endpoints(),
            message: format!("{what}: {}", failures.join("; ")),
        })
    }

    /// Every key under `prefix`, at one revision (a linearizable read: it needs the
    /// majority).
    pub fn read_prefix(&mut self, prefix: &str) -> Result<Snapshot, StoreError> {
        let prefix = prefix.to_string();
        self.call("read", |mut c| {
            let prefix = prefix.clone();
            async move {
                let response = c
                    .get(prefix.as_bytes(), Some(GetOptions::new().with_prefix()))
                    .await?;
                let revision = response.header().map_or(0, |h| h.revision());
                let entries = response
                    .kvs()
                    .iter()
                    .map(|kv| Entry {
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        value: kv.value().to_vec(),
                        create_revision: kv.create_revision(),
                        mod_revision: kv.mod_revision(),
                        lease: kv.lease(),
                    })
                    .collect();
                Ok(Snapshot { revision, entries })
            }
        })
    }

    /// Applies `changes` if every condition holds: the revision they were written at, or
    /// `None` when a condition did not hold (nothing changed).
    pub fn transaction(
        &mut self,
        conditions: &[Condition],
        changes: &[Change],
    ) -> Result<Option<i64>, StoreError> {
        let compares: Vec<Compare> = conditions
            .iter()
            .map(|c| match c {
                Condition::Absent(key) => {
                    Compare::create_revision(key.as_bytes(), CompareOp::Equal, 0)
                }
                Condition::ModRevision(key, rev) => {
                    Compare::mod_revision(key.as_bytes(), CompareOp::Equal, *rev)
                }
            })
            .collect();
        let ops: Vec<TxnOp> = changes
            .iter()
            .map(|c| match c {
                Change::Put { key, value, lease } => TxnOp::put(
                    key.as_bytes(),
                    value.clone(),
                    lease.map(|l| PutOptions::new().with_lease(l)),
                ),
                Change::Delete(key) => TxnOp::delete(key.as_bytes(), None),
            })
            .collect();
        let txn = Txn::new().when(compares).and_then(ops);
        self.call("transaction", |mut c| {
            let txn = txn.clone();
            async move {
                let response = c.txn(txn).await?;
                let revision = response.header().map_or(0, |h| h.revision());
                Ok(response.succeeded().then_some(revision))
            }
        })
    }

    /// Puts one key unconditionally.
    pub fn put(&mut self, key: &str, value: Vec<u8>, lease: Option<i64>) -> Result<(), StoreError> {
        self.transaction(
            &[],
            &[Change::Put {
                key: key.to_string(),
                value,
                lease,
            }],
        )
        .map(|_| ())
    }

    /// A new lease of `ttl` whole seconds; its id.
    pub fn grant(&mut self, ttl: Duration) -> Result<i64, StoreError> {
        let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        self.call("lease grant", |mut c| async move {
            Ok(c.lease_grant(seconds, None).await?.id())
        })
    }

    /// Renews a lease once; the seconds it has left, 0 when it had already expired. The
    /// stream is opened on the member that answered last; a failed renewal is tried once
    /// more on a stream opened afresh (on the next member that answers).
    pub fn keep_alive(&mut self, lease: i64) -> Result<i64, StoreError> {
        let mut last = None;
        for _ in 0..2 {
            match self.renew_once(lease) {
                Ok(ttl) => return Ok(ttl),
                Err(e) => {
                    self.keepers.retain(|(id, _, _)| *id != lease);
                    let members = self.config.endpoints.len();
                    self.clients[self.current] = None;
                    self.current = (self.current + 1) % members;
                    last = Some(e);
                }
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn renew_once(&mut self, lease: i64) -> Result<i64, StoreError> {
        if !self.keepers.iter().any(|(id, _, _)| *id == lease) {
            let (keeper, stream) = self.call("lease keep-alive", |mut c| async move {
                c.lease_keep_alive(lease).await
            })?;
            self.keepers.push((lease, keeper, stream));
        }
        let timeout = self.config.op_timeout;
        let endpoints = self.config.endpoints[self.current].clone();
        let index = self
            .keepers
            .iter()
            .position(|(id, _, _)| *id == lease)
            .expect("inserted above");
        let (_, keeper, stream) = &mut self.keepers[index];
        let outcome = self.runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await
        });
        match outcome {
            Ok(Ok(Some(response))) => Ok(response.ttl()),
            Ok(Ok(None)) => Err(StoreError::Failed {
                endpoints,
                message: "lease keep-alive: the stream ended".into(),
            }),
            Ok(Err(e)) => Err(StoreError::Failed {
                endpoints,
                message: format!("lease keep-alive: {e}"),
            }),
            Err(_) => Err(StoreError::Timeout { endpoints, timeout }),
        }
    }

    /// Ends a lease now: every key attached to it disappears.
    pub fn revoke(&mut self, lease: i64) -> Result<(), StoreError> {
        self.keepers.retain(|(id, _, _)| *id != lease);
        self.call("lease revoke", |mut c| async move {
            match c.lease_revoke(lease).await {
                Ok(_) => Ok(()),
                // Already gone is what we wanted.
                Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("not found") => {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Hands etcd's raft leadership from the member at endpoint `from` to the one at `to`,
    /// if `from` leads now (etcd's `MoveLeader`, which only the leader accepts). Ok(true)
    /// when it was handed over, Ok(false) when `from` does not lead.
    pub fn hand_raft_leadership(&mut self, from: &str, to: &str) -> Result<bool, StoreError> {
        let index = |endpoint: &str| {
            self.config
                .endpoints
                .iter()
                .position(|e| e == endpoint)
                .ok_or_else(|| StoreError::Failed {
                    endpoints: self.endpoints(),
                    message: format!("{endpoint} is not one of the configured endpoints"),
                })
        };
        let (from_index, _) = (index(from)?, index(to)?);
        let status = |endpoint: &str| {
            let all = self.health_of(&[endpoint.to_string()]);
            let answered = all.into_iter().next().map(|h| h.answered);
            answered
                .unwrap_or_else(|| Err("no answer".into()))
                .map_err(|message| StoreError::Failed {
                    endpoints: endpoint.to_string(),
                    message: format!("status: {message}"),
                })
        };
        let here = status(from)?;
        if here.member_id == 0 || here.member_id != here.leader_id {
            return Ok(false);
        }
        let target = status(to)?.member_id;
        let client = self.client(from_index)?;
        let timeout = self.config.op_timeout;
        self.runtime
            .block_on(async move {
                let mut client = client;
                tokio::time::timeout(timeout, client.move_leader(target)).await
            })
            .map_err(|_| StoreError::Timeout {
                endpoints: from.to_string(),
                timeout,
            })?
            .map_err(|e| StoreError::Failed {
                endpoints: from.to_string(),
                message: format!("move leader: {e}"),
            })?;
        Ok(true)
    }

    /// Asks every endpoint on its own for its status (for `rampart-db status`).
    pub fn health(&self) -> Vec<MemberHealth> {
        self.health_of(&self.config.endpoints)
    }

    /// The status of each of `endpoints`, each asked on its own.
    fn health_of(&self, endpoints: &[String]) -> Vec<MemberHealth> {
        let timeout = self.config.op_timeout;
        endpoints
            .iter()
            .map(|endpoint| {
                let answered = self
                    .options()
                    .map_err(|e| e.to_string())
                    .and_then(|options| {
                        self.runtime.block_on(async {
                            let asked = async {
                                let mut c =
                                    Client::connect([endpoint.as_str()], Some(options)).await?;
                                c.status().await
                            };
                            match tokio::time::timeout(timeout, asked).await {
                                Err(_) => Err(format!("no answer within {timeout:?}")),
                                Ok(Err(e)) => Err(e.to_string()),
                                Ok(Ok(s)) => Ok(MemberStatus {
                                    member_id: s.header().map_or(0, |h| h.member_id()),
                                    leader_id: s.leader(),
                                    raft_term: s.raft_term(),
                                    version: s.version().to_string(),
                                }),
                            }
                        })
                    });
                MemberHealth {
                    endpoint: endpoint.clone(),
                    answered,
                }
            })
            .collect()
    }
}
