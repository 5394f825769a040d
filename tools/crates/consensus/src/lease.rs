//! Leases: keys that disappear unless their holder keeps renewing them.

use std::time::{Duration, Instant};

use etcd_client as etcd;

pub use crate::client::LeaseId;
use crate::client::{remaining, Consensus, Retry};
use crate::{ConsensusError, Result};

/// A granted or renewed lease, as its holder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: LeaseId,
    /// The TTL etcd granted (whole seconds; etcd rounds up to its minimum, about
    /// 1.5 × its election timeout).
    pub ttl: Duration,
    /// The earliest instant at which etcd may expire the lease: the moment the grant or
    /// renewal was *sent*, plus `ttl`. Until then the lease — and every key attached to
    /// it — exists; stop acting on it (fence) before this instant, with a margin.
    pub valid_until: Instant,
}

impl Lease {
    /// Time left before [`Lease::valid_until`] (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.valid_until.saturating_duration_since(Instant::now())
    }
}

impl Consensus {
    /// Grants a lease of `ttl` (rounded up to whole seconds). Attach keys to it with the
    /// `lease` argument of [`Consensus::put`], [`Consensus::create`] or
    /// [`Consensus::compare_and_swap`]; keep it with [`Consensus::keep_alive`].
    pub async fn grant_lease(&self, ttl: Duration) -> Result<Lease> {
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let seconds = i64::try_from(seconds.max(1)).unwrap_or(i64::MAX);
        // Retried on any failure: a grant that was applied but not answered leaves a lease
        // nobody holds, which expires by itself.
        let mut sent = Instant::now();
        let response = self
            .call(
                format!("grant a {seconds}s lease"),
                Retry::Always,
                |mut c| {
                    sent = Instant::now();
                    async move { c.lease_grant(seconds, None).await }
                },
            )
            .await?;
        if !response.error().is_empty() {
            return Err(ConsensusError::Request {
                op: "grant a lease".into(),
                detail: response.error().to_string(),
            });
        }
        Ok(granted(LeaseId(response.id()), response.ttl(), sent))
    }

    /// Revokes `lease` now: every key attached to it is deleted at once (a leader stepping
    /// down cleanly). Revoking an expired lease is an error
    /// ([`ConsensusError::Request`], "requested lease not found").
    pub async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.call(
            format!("revoke lease {lease}"),
            Retry::Always,
            |mut c| async move { c.lease_revoke(lease.0).await },
        )
        .await?;
        Ok(())
    }

    /// The time etcd still gives `lease`, or `None` if it has expired or was revoked.
    /// (etcd's own view: use [`Lease::valid_until`] to decide whether to act.)
    pub async fn lease_time_to_live(&self, lease: LeaseId) -> Result<Option<Duration>> {
        let response = self
            .call(
                format!("time-to-live of lease {lease}"),
                Retry::Always,
                |mut c| async move { c.lease_time_to_live(lease.0, None).await },
            )
            .await?;
        Ok(u64::try_from(response.ttl())
            .ok()
            .filter(|_| response.ttl() > 0)
            .map(Duration::from_secs))
    }

    /// Opens a keep-alive stream for `lease`; call [`KeepAlive::renew`] periodically (a
    /// third of the TTL is etcd's own rhythm).
    pub async fn keep_alive(&self, lease: LeaseId) -> Result<KeepAlive> {
        let stream = self.open_keep_alive(lease).await?;
        Ok(KeepAlive {
            consensus: self.clone(),
            lease,
            stream: Some(stream),
        })
    }

    async fn open_keep_alive(&self, lease: LeaseId) -> Result<Stream> {
        let (member, (keeper, responses)) = self
            .call_member(
                format!("keep lease {lease} alive"),
                Retry::Always,
                |_, mut c| async move { c.lease_keep_alive(lease.0).await },
            )
            .await?;
        Ok(Stream {
            member,
            keeper,
            responses,
        })
    }
}

/// A keep-alive stream to one member.
struct Stream {
    member: usize,
    keeper: etcd::LeaseKeeper,
    responses: etcd::LeaseKeepAliveStream,
}

/// Renews one lease on demand (one renewal per [`KeepAlive::renew`]; nothing runs in
/// the background, so the holder decides when and knows the outcome of each).
pub struct KeepAlive {
    consensus: Consensus,
    lease: LeaseId,
    /// `None` after a failure: the next attempt opens a new stream on another member.
    stream: Option<Stream>,
}

impl KeepAlive {
    /// The lease this keeps.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Renews the lease once and waits for etcd's answer, moving to another member when
    /// one does not answer within the attempt timeout, for at most the request timeout.
    ///
    /// - `Ok(lease)`: renewed; `lease.valid_until` is the new earliest expiry.
    /// - [`ConsensusError::LeaseExpired`]: the lease is gone; so is every key on it.
    /// - any other error ([`ConsensusError::is_unavailable`]): no renewal happened as far
    ///   as this process knows; the previous `valid_until` still bounds the lease. Call
    ///   again, or stop acting before that instant.
    pub async fn renew(&mut self) -> Result<Lease> {
        let lease = self.lease;
        let op = format!("renew lease {lease}");
        let consensus = self.consensus.clone();
        let deadline = Instant::now() + consensus.request_timeout;
        let mut last = None;
        while !remaining(deadline).is_zero() {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => match consensus.open_keep_alive(lease).await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                },
            };
            let budget = remaining(deadline).min(consensus.attempt_timeout);
            let sent = Instant::now();
            let answer = tokio::time::timeout(budget, async {
                stream.keeper.keep_alive().await?;
                stream.responses.message().await
            })
            .await;
            let member = stream.member;
            let failure = match answer {
                Ok(Ok(Some(r))) if r.ttl() <= 0 => {
                    return Err(ConsensusError::LeaseExpired { lease })
                }
                Ok(Ok(Some(r))) => return Ok(granted(lease, r.ttl(), sent)),
                Ok(Ok(None)) => ConsensusError::StreamEnded {
                    what: op.clone(),
                    reason: "etcd closed the keep-alive stream".into(),
                },
                Ok(Err(e)) => ConsensusError::from_etcd(&op, &consensus.urls, e),
                Err(_) => ConsensusError::Timeout {
                    op: op.clone(),
                    after: budget,
                    urls: consensus.members[member].0.url.clone(),
                },
            };
            // This member failed us: forget its stream, open the next one elsewhere.
            self.stream = None;
            consensus.avoid(member);
            if !failure.is_unavailable() {
                return Err(failure);
            }
            last = Some(failure);
        }
        Err(last.unwrap_or_else(|| ConsensusError::Timeout {
            op,
            after: consensus.request_timeout,
            urls: consensus.urls.clone(),
        }))
    }
}

fn granted(id: LeaseId, ttl_seconds: i64, sent: Instant) -> Lease {
    let ttl = Duration::from_secs(u64::try_from(ttl_seconds).unwrap_or(0));
    Lease {
        id,
        ttl,
        valid_until: sent + ttl,
    }
}
