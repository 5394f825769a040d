//! Watches: the changes to a key or a prefix, in revision order.

use etcd_client as etcd;

use crate::client::{Consensus, KeyValue, Retry};
use crate::{ConsensusError, Result};

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was written (created or changed); its new state.
    Put(KeyValue),
    /// The key was deleted (by a delete, or because its lease expired) at `revision`.
    Delete { key: String, revision: i64 },
}

impl Event {
    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put(kv) => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        match self {
            Event::Put(kv) => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }
}

/// The changes etcd delivered together (one revision or several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    pub events: Vec<Event>,
    /// The cluster's revision when the batch was sent (≥ every event's).
    pub revision: i64,
}

/// A running watch. [`Watch::next`] waits without a deadline (a quiet key sends
/// nothing); bound it with `tokio::time::timeout` or `select!` where the caller must act
/// on time.
pub struct Watch {
    stream: etcd::WatchStream,
    key: String,
    from: Option<i64>,
}

impl Consensus {
    /// Watches `key` from revision `from` (inclusive; `None`: changes after now). Use
    /// `mod_revision + 1` of a value just read to miss nothing in between.
    pub async fn watch(&self, key: &str, from: Option<i64>) -> Result<Watch> {
        self.start_watch(key, from, etcd::WatchOptions::new()).await
    }

    /// Watches every key starting with `prefix`, as [`Consensus::watch`].
    pub async fn watch_prefix(&self, prefix: &str, from: Option<i64>) -> Result<Watch> {
        self.start_watch(prefix, from, etcd::WatchOptions::new().with_prefix())
            .await
    }

    async fn start_watch(
        &self,
        key: &str,
        from: Option<i64>,
        options: etcd::WatchOptions,
    ) -> Result<Watch> {
        let options = match from {
            Some(revision) => options.with_start_revision(revision),
            None => options,
        };
        let op = format!("watch {key}");
        // etcd confirms the watch (or refuses it: compacted) before any event.
        let (stream, first) = self
            .call(op.clone(), Retry::Always, |mut c| {
                let options = options.clone();
                async move {
                    let mut stream = c.watch(key, Some(options)).await?;
                    let first = stream.message().await?;
                    Ok((stream, first))
                }
            })
            .await?;
        let watch = Watch {
            stream,
            key: key.to_string(),
            from,
        };
        match first {
            None => Err(ConsensusError::StreamEnded {
                what: op,
                reason: "etcd closed the stream before confirming the watch".into(),
            }),
            Some(response) => {
                watch.check(&response)?;
                Ok(watch)
            }
        }
    }
}

impl Watch {
    /// The next batch of changes (skipping etcd's progress notifications).
    pub async fn next(&mut self) -> Result<WatchBatch> {
        loop {
            let response = self
                .stream
                .message()
                .await
                .map_err(|e| ConsensusError::from_etcd(&self.what(), "", e))?;
            let Some(response) = response else {
                return Err(ConsensusError::StreamEnded {
                    what: self.what(),
                    reason: "etcd closed the stream".into(),
                });
            };
            self.check(&response)?;
            if response.events().is_empty() {
                continue;
            }
            return Ok(WatchBatch {
                events: response.events().iter().filter_map(event).collect(),
                revision: response.header().map_or(0, |h| h.revision()),
            });
        }
    }

    fn what(&self) -> String {
        format!("watch {}", self.key)
    }

    fn check(&self, response: &etcd::WatchResponse) -> Result<()> {
        if response.compact_revision() > 0 {
            return Err(ConsensusError::Compacted {
                key: self.key.clone(),
                requested: self.from.unwrap_or(0),
                compacted: response.compact_revision(),
            });
        }
        if response.canceled() {
            let reason = response.cancel_reason();
            return Err(ConsensusError::StreamEnded {
                what: self.what(),
                reason: if reason.is_empty() {
                    "etcd cancelled the watch".into()
                } else {
                    reason.to_string()
                },
            });
        }
        Ok(())
    }
}

fn event(e: &etcd::Event) -> Option<Event> {
    let kv = e.kv()?;
    Some(match e.event_type() {
        etcd::EventType::Put => Event::Put(KeyValue::from_etcd(kv)),
        etcd::EventType::Delete => Event::Delete {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            revision: kv.mod_revision(),
        },
    })
}
