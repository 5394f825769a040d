//! The client against a real three-member etcd cluster on loopback (rampart_lab::local::etcd::TestCluster, the lab's etcd on loopback):
//! TLS with client certificates, compare-and-swap, leases, watches, health, and what
//! losing one and two members does.

use std::time::{Duration, Instant};

use rampart_consensus::{
    cluster_health, Compare, Consensus, ConsensusError, Event, Expect, Op, OpResult, Txn,
};
use rampart_lab::local::etcd::TestCluster;

fn cluster() -> TestCluster {
    TestCluster::start().unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(cluster: &TestCluster) -> Consensus {
    Consensus::connect(&cluster.client_config("web1"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn three_members_are_healthy_over_tls_and_agree_on_a_leader() {
    let cluster = cluster();
    let health = cluster_health(&cluster.client_config("web2")).await;
    assert!(health.all_healthy(), "{health:#?}");
    assert_eq!(health.members.len(), 3);
    let names: Vec<&str> = health.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["lb", "web1", "web2"]);
    let leader = health.leader.clone().expect("a leader");
    assert!(names.contains(&leader.as_str()), "{leader}");
    for member in &health.members {
        let status = member.status.as_ref().unwrap();
        assert_eq!(status.leader.as_deref(), Some(leader.as_str()));
        assert!(status.version.starts_with("3."), "{status:?}");
        assert!(status.raft_term >= 1);
    }
}

#[tokio::test]
async fn compare_and_swap_writes_only_when_the_key_is_as_expected() {
    let cluster = cluster();
    let etcd = connect(&cluster).await;
    assert_eq!(etcd.get("/t/leader").await.unwrap(), None);

    let first = etcd.create("/t/leader", "web1", None).await.unwrap();
    assert!(first.succeeded);
    let second = etcd.create("/t/leader", "web2", None).await.unwrap();
    assert!(!second.succeeded, "a second create must fail");
    let current = second
        .current
        .expect("the holder, read in the same transaction");
    assert_eq!(current.value_str(), Some("web1"));
    assert_eq!(current.mod_revision, first.revision);

    // Optimistic concurrency on the revision read.
    let stale = etcd
        .compare_and_swap(
            "/t/leader",
            Expect::ModRevision(first.revision - 1),
            "x",
            None,
        )
        .await
        .unwrap();
    assert!(!stale.succeeded);
    let swapped = etcd
        .compare_and_swap(
            "/t/leader",
            Expect::ModRevision(first.revision),
            "web2",
            None,
        )
        .await
        .unwrap();
    assert!(swapped.succeeded);
    assert_eq!(
        etcd.get("/t/leader").await.unwrap().unwrap().value_str(),
        Some("web2")
    );
    let by_value = etcd
        .compare_and_swap("/t/leader", Expect::Value(b"web1".to_vec()), "x", None)
        .await
        .unwrap();
    assert!(!by_value.succeeded);

    // Delete only what we hold.
    let wrong = etcd
        .compare_and_delete("/t/leader", Expect::Value(b"web1".to_vec()))
        .await
        .unwrap();
    assert!(!wrong.succeeded);
    let mine = etcd
        .compare_and_delete("/t/leader", Expect::Value(b"web2".to_vec()))
        .await
        .unwrap();
    assert!(mine.succeeded);
    assert_eq!(etcd.get("/t/leader").await.unwrap(), None);

    // Several keys at one revision.
    etcd.put("/t/term", "3", None).await.unwrap();
    let term = etcd.get("/t/term").await.unwrap().unwrap();
    let txn = Txn::new()
        .when([
            Compare::absent("/t/leader"),
            Compare::mod_revision("/t/term", term.mod_revision),
        ])
        .then([
            Op::put("/t/leader", "web1", None),
            Op::put("/t/term", "4", None),
            Op::get_prefix("/t/"),
        ])
        .otherwise([Op::get("/t/leader")]);
    let result = etcd.txn(txn.clone()).await.unwrap();
    assert!(result.succeeded);
    let OpResult::Get(all) = &result.results[2] else {
        panic!("{result:?}")
    };
    let pairs: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value_str()))
        .collect();
    assert_eq!(pairs, [("/t/leader", Some("web1")), ("/t/term", Some("4"))]);
    // The same transaction again: the term moved, so it takes the other branch.
    let again = etcd.txn(txn).await.unwrap();
    assert!(!again.succeeded);
    assert!(matches!(&again.results[0], OpResult::Get(kvs) if kvs.len() == 1));
    let (keys, revision) = etcd.get_prefix("/t/").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(revision, again.revision);
    assert!(etcd.delete("/t/term").await.unwrap());
    assert!(!etcd.delete("/t/term").await.unwrap());
}

#[tokio::test]
async fn a_leased_key_lives_while_renewed_and_never_disappears_before_valid_until() {
    let cluster = cluster();
    let etcd = connect(&cluster).await;
    let lease = etcd.grant_lease(Duration::from_secs(2)).await.unwrap();
    assert_eq!(lease.ttl, Duration::from_secs(2));
    let taken = etcd
        .create("/t/leader", "web1", Some(lease.id))
        .await
        .unwrap();
    assert!(taken.succeeded);
    let held = etcd.get("/t/leader").await.unwrap().unwrap();
    assert_eq!(held.lease, Some(lease.id));
    let on_lease = etcd
        .compare_and_swap("/t/leader", Expect::Lease(lease.id), "web1", Some(lease.id))
        .await
        .unwrap();
    assert!(on_lease.succeeded);

    // Renewed every 0.5 s for 5 s: more than twice the TTL, the key stays.
    let mut keep = etcd.keep_alive(lease.id).await.unwrap();
    let mut last = lease;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        last = keep.renew().await.unwrap();
        assert!(last.valid_until > Instant::now());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(etcd.get("/t/leader").await.unwrap().is_some());
    }
    let remaining = etcd.lease_time_to_live(lease.id).await.unwrap();
    assert!(
        remaining.is_some_and(|r| r <= Duration::from_secs(2)),
        "{remaining:?}"
    );

    // Stop renewing: the key goes, but not before valid_until.
    let gone = loop {
        if etcd.get("/t/leader").await.unwrap().is_none() {
            break Instant::now();
        }
        assert!(
            last.valid_until.elapsed() < Duration::from_secs(5),
            "the key outlived its lease by 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        gone >= last.valid_until,
        "the key disappeared {:?} before valid_until",
        last.valid_until - gone
    );
    eprintln!(
        "leased key gone {:?} after valid_until",
        gone - last.valid_until
    );
    match keep.renew().await {
        Err(ConsensusError::LeaseExpired { lease: id }) => assert_eq!(id, lease.id),
        other => panic!("expected LeaseExpired, got {other:?}"),
    }
    assert_eq!(etcd.lease_time_to_live(lease.id).await.unwrap(), None);
}

#[tokio::test]
async fn revoking_a_lease_deletes_its_keys_at_once() {
    let cluster = cluster();
    let etcd = connect(&cluster).await;
    let lease = etcd.grant_lease(Duration::from_secs(30)).await.unwrap();
    etcd.put("/t/a", "1", Some(lease.id)).await.unwrap();
    etcd.put("/t/b", "2", Some(lease.id)).await.unwrap();
    etcd.revoke_lease(lease.id).await.unwrap();
    assert_eq!(etcd.get_prefix("/t/").await.unwrap().0, []);
    let again = etcd.revoke_lease(lease.id).await.unwrap_err();
    assert!(matches!(again, ConsensusError::Request { .. }), "{again:?}");
}

#[tokio::test]
async fn a_watch_sees_every_change_from_its_revision_including_lease_expiry() {
    let cluster = cluster();
    let etcd = connect(&cluster).await;
    let first = etcd.put("/t/leader", "web1", None).await.unwrap();
    etcd.put("/t/leader", "web2", None).await.unwrap();
    // From the first write: both puts are history, delivered at once.
    let mut watch = etcd.watch("/t/leader", Some(first)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(watch.next().await.unwrap().events);
    }
    let values: Vec<Option<&str>> = seen
        .iter()
        .map(|e| match e {
            Event::Put(kv) => kv.value_str(),
            Event::Delete { .. } => None,
        })
        .collect();
    assert_eq!(values, [Some("web1"), Some("web2")]);

    // A quiet watch outlives the request timeout (2 s), then sees the lease expire.
    let mut prefix = etcd.watch_prefix("/t/", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lease = etcd.grant_lease(Duration::from_secs(2)).await.unwrap();
    etcd.put("/t/leader", "web1", Some(lease.id)).await.unwrap();
    let put = tokio::time::timeout(Duration::from_secs(5), prefix.next())
        .await
        .expect("the put within 5 s")
        .unwrap();
    assert!(matches!(&put.events[..], [Event::Put(kv)] if kv.lease == Some(lease.id)));
    let deleted = tokio::time::timeout(Duration::from_secs(10), prefix.next())
        .await
        .expect("the expiry within 10 s")
        .unwrap();
    assert!(
        matches!(&deleted.events[..], [Event::Delete { key, .. }] if key == "/t/leader"),
        "{deleted:?}"
    );
    assert_eq!(deleted.events[0].key(), "/t/leader");
    assert!(deleted.events[0].revision() > put.events[0].revision());
}

#[tokio::test]
async fn one_member_lost_keeps_the_quorum_two_lost_refuse_writes_until_one_returns() {
    let mut cluster = cluster();
    let etcd = connect(&cluster).await;
    etcd.put("/t/k", "0", None).await.unwrap();

    // Any one member may go: here the tie-breaker.
    cluster.kill("lb");
    let started = Instant::now();
    let mut writes = 0;
    while writes < 5 {
        match etcd.put("/t/k", writes.to_string(), None).await {
            Ok(_) => writes += 1,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("while lb is down: {e}");
            }
            Err(e) => panic!("writes must go on with two of three members: {e}"),
        }
    }
    eprintln!("5 writes with lb down in {:?}", started.elapsed());
    let health = cluster_health(&cluster.client_config("web1")).await;
    assert!(health.quorum, "{health:#?}");
    let lb = health.members.iter().find(|m| m.name == "lb").unwrap();
    assert!(!lb.healthy() && lb.status.is_err(), "{lb:?}");

    // Two down: no quorum. Writes fail as unavailable, within the request timeout.
    cluster.kill("web2");
    let started = Instant::now();
    let mut acknowledged = "4".to_string();
    let (error, unknown) = loop {
        // The first writes may still reach a leader that has not noticed yet: they are
        // acknowledged, so they must survive.
        let value = format!("after-{}", started.elapsed().as_millis());
        match etcd.put("/t/k", value.clone(), None).await {
            Ok(_) if started.elapsed() < Duration::from_secs(5) => acknowledged = value,
            Ok(_) => panic!("a write succeeded 5 s after two of three members died"),
            Err(e) => break (e, value),
        }
    };
    eprintln!(
        "writes refused {:?} after the second member died: {error}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error:?}");
    let one = Instant::now();
    let error = etcd.get("/t/k").await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        one.elapsed() < Duration::from_secs(3),
        "{:?}",
        one.elapsed()
    );
    let health = cluster_health(&cluster.client_config("web1")).await;
    assert!(!health.quorum, "{health:#?}");
    assert!(health.quorum_error.is_some());

    // One back: a quorum again, and nothing acknowledged was lost. The refused write's
    // outcome was unknown (it may sit in a member's log and commit now): either value.
    cluster.restart("web2").unwrap();
    cluster.wait_healthy(Duration::from_secs(20)).unwrap();
    let value = etcd.get("/t/k").await.unwrap().unwrap();
    let value = value.value_str().unwrap_or_default();
    assert!(
        value == acknowledged || value == unknown,
        "the key holds {value:?} (expected the last acknowledged write {acknowledged:?}, or the refused {unknown:?})"
    );
}

#[tokio::test]
async fn a_paused_member_costs_reads_nothing_and_writes_at_most_a_few_attempts() {
    let mut cluster = cluster();
    let etcd = connect(&cluster).await;
    etcd.put("/t/k", "0", None).await.unwrap();
    // lb is the first member the client asks (and may be etcd's leader): it stops
    // answering with its connections open, like a host that froze.
    cluster.pause("lb");
    let started = Instant::now();
    for _ in 0..20 {
        let value = etcd
            .get("/t/k")
            .await
            .expect("reads move on to another member");
        assert_eq!(value.unwrap().value_str(), Some("0"));
    }
    eprintln!("20 reads with lb paused in {:?}", started.elapsed());
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut acknowledged = "0".to_string();
    for i in 0..20 {
        match etcd.put("/t/k", i.to_string(), None).await {
            Ok(_) => acknowledged = i.to_string(),
            Err(e) => {
                assert!(e.is_unavailable(), "{e:?}");
                failures.push(format!("{:?}: {e}", started.elapsed()));
            }
        }
    }
    eprintln!(
        "20 writes with lb paused in {:?}, {} failed: {failures:#?}",
        started.elapsed(),
        failures.len()
    );
    assert!(failures.len() <= 3, "{failures:#?}");
    cluster.resume("lb");
    cluster.wait_healthy(Duration::from_secs(20)).unwrap();
    assert_eq!(
        etcd.get("/t/k").await.unwrap().unwrap().value_str(),
        Some(acknowledged.as_str())
    );
}

#[tokio::test]
async fn clients_without_a_certificate_or_with_another_cas_are_refused() {
    let cluster = cluster();
    let config = cluster.client_config("web1");
    let urls: Vec<String> = config.members.iter().map(|m| m.url.clone()).collect();
    let ca = std::fs::read(&config.ca).unwrap();
    let options = |tls: etcd_client::TlsOptions| {
        etcd_client::ConnectOptions::new()
            .with_tls(tls)
            .with_timeout(Duration::from_secs(2))
            .with_connect_timeout(Duration::from_secs(2))
    };

    // No client certificate: the TLS handshake is refused.
    let tls =
        etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(&ca));
    let mut client = etcd_client::Client::connect(&urls, Some(options(tls)))
        .await
        .unwrap();
    let refused = client.get("/t/k", None).await;
    assert!(refused.is_err(), "no certificate, yet: {refused:?}");

    // A certificate from another CA (same names): refused too.
    let other = tempfile::tempdir().unwrap();
    rampart_lab::local::etcd::issue_certificates(cluster.topology(), other.path()).unwrap();
    let mut foreign = config.clone();
    foreign.cert = other.path().join("issued/web1/etcd-client.pem");
    foreign.key = other.path().join("issued/web1/etcd-client.key");
    let etcd = Consensus::connect(&foreign).await.unwrap();
    let refused = etcd.get("/t/k").await.unwrap_err();
    assert!(refused.is_unavailable(), "{refused:?}");

    // And a server from another CA is not trusted by ours.
    let mut distrust = config.clone();
    distrust.ca = other.path().join("issued/ca.pem");
    let etcd = Consensus::connect(&distrust).await.unwrap();
    assert!(etcd.get("/t/k").await.is_err());

    // The right identity works, and a missing file is named.
    let etcd = Consensus::connect(&config).await.unwrap();
    etcd.put("/t/k", "ok", None).await.unwrap();
    let mut missing = config.clone();
    missing.key = other.path().join("nope.key");
    let Err(error) = Consensus::connect(&missing).await else {
        panic!("a missing key must fail")
    };
    assert!(error.to_string().contains("nope.key"), "{error}");
}
