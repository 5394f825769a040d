//! The agent's clocks, all derived from the leader lease's TTL (docs/failover.md "Timing").
//!
//! etcd expires a lease no earlier than TTL after the *last renewal it received*, and the
//! agent counts from the moment it *sent* that renewal, which is earlier. So the writer
//! gate (see [`crate::gate`]) closing at `sent + TTL − margin` is closed before the lease
//! can expire, by at least `margin`, whatever happens to the agent afterwards: the kernel
//! closes it, not the agent. The margin covers what remains: the two clocks' different
//! rates over one TTL (parts per million; NTP keeps them far closer) and the kernel's timer
//! granularity (a few milliseconds). A fifth of the TTL is far more than both, and short
//! enough that a leader which lost etcd stops taking writes well before its lease ends.

use std::time::{Duration, Instant};

/// The agent's timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The leader lease's TTL (etcd counts whole seconds).
    pub ttl: Duration,
    /// How often the agent looks at its MariaDB and at etcd, and renews the lease.
    pub tick: Duration,
    /// How long before the lease can expire the writer gate closes (see the module docs).
    pub fence_margin: Duration,
    /// A health check (connect and one query over the local socket) slower than this fails.
    pub health_timeout: Duration,
    /// A leader steps down after this many failed health checks in a row (a refused
    /// connection, i.e. a dead server, counts as all of them at once).
    pub unhealthy_checks: u32,
    /// `available` policy: how long writes may wait for the sync replica's acknowledgement
    /// before the leader records it out of sync and lets them go on without it.
    pub sync_grace: Duration,
    /// How long a new leader waits for its relay log to be applied before it gives the
    /// lead back.
    pub catch_up: Duration,
}

impl Timing {
    /// Everything from the TTL: a tick of TTL/20 (at least 100 ms), a margin of TTL/5.
    pub fn from_ttl(ttl: Duration) -> Timing {
        let ttl = Duration::from_secs(ttl.as_secs().max(2));
        Timing {
            ttl,
            tick: (ttl / 20).max(Duration::from_millis(100)),
            fence_margin: ttl / 5,
            health_timeout: Duration::from_secs(1),
            unhealthy_checks: 3,
            sync_grace: Duration::from_secs(2),
            catch_up: ttl * 6,
        }
    }

    /// When the writer gate must be closed for a lease renewed by a request sent at `sent`.
    pub fn gate_deadline(&self, sent: Instant) -> Instant {
        sent + self.ttl - self.fence_margin
    }
}

impl Default for Timing {
    fn default() -> Timing {
        Timing::from_ttl(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_a_margin_before_the_lease_can_expire() {
        let t = Timing::default();
        assert_eq!(t.ttl, Duration::from_secs(5));
        assert_eq!(t.fence_margin, Duration::from_secs(1));
        assert_eq!(t.tick, Duration::from_millis(250));
        let sent = Instant::now();
        assert_eq!(t.gate_deadline(sent), sent + Duration::from_secs(4));
        // A TTL below etcd's minimum is raised, and the tick never gets absurdly short.
        let short = Timing::from_ttl(Duration::from_millis(500));
        assert_eq!(short.ttl, Duration::from_secs(2));
        assert_eq!(short.tick, Duration::from_millis(100));
    }
}
