//! Failover with two real MariaDB servers (issue #9): promotion after a crash loses no
//! acknowledged write, promotion refuses when it would lose data, rejoin brings the old
//! primary back as a replica that agrees with the new primary.
//!
//! Each test runs in its own network namespace (see `support`), needs root, `ip`, `nft`,
//! `openssl`, `mariadbd` and `mariadb-install-db` (Debian's mariadb-server).

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{fence_hook, fenced, isolated, Pair, Writer, DATABASE};

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn promote_after_primary_crash_loses_no_acknowledged_write() {
    isolated(
        "promote_after_primary_crash_loses_no_acknowledged_write",
        || {
            let mut pair = Pair::start();
            let hook = fence_hook();
            let old = pair.primary.host.name.clone();
            let (code, out, err) = pair.rampart_db(&["status", "--json"]);
            assert_eq!(code, 0, "healthy pair: {out}{err}");
            let status = json(&out);
            assert_eq!(status["type"], "status");
            assert_eq!(status["hosts"][0]["role"], "primary");
            assert_eq!(status["hosts"][1]["role"], "replica");

            let ca = pair.primary.pki().join("ca.pem");
            let writer = Writer::start(&pair.cluster, ca, 20_000, Duration::from_secs(90));
            writer.wait_acked(300, Duration::from_secs(30));

            // The crash: writes are in flight.
            pair.primary.kill();
            let killed = Instant::now();
            let acked_before_kill: BTreeSet<u64> = writer
                .log
                .lock()
                .unwrap()
                .acked
                .iter()
                .filter(|(_, at)| *at <= killed)
                .map(|(seq, _)| *seq)
                .collect();

            let (code, out, err) = pair.rampart_db(&[
                "promote",
                &pair.replica.host.name,
                "--fence-hook",
                &hook,
                "--json",
            ]);
            let promoted = Instant::now();
            assert_eq!(code, 0, "promote: {out}{err}");
            let report = json(&out);
            assert_eq!(report["type"], "operation");
            assert_eq!(report["outcome"], "done", "{report:#}");
            assert!(fenced(&old), "the old primary is firewall-fenced");

            // Writes resume on the new primary through the read_only probe.
            let resumed_at = writer.acked() + 50;
            writer.wait_acked(resumed_at, Duration::from_secs(30));
            let log = writer.stop();
            let first_after = log
                .acked
                .iter()
                .find(|(_, at)| *at > killed)
                .map(|(_, at)| *at)
                .expect("a write acknowledged after the crash");
            let unavailable = first_after.duration_since(killed).as_secs_f64();

            let on_new_primary: BTreeSet<u64> = Pair::visits(&pair.replica).into_iter().collect();
            let lost: Vec<u64> = acked_before_kill
                .difference(&on_new_primary)
                .copied()
                .collect();
            println!(
                "failover: {} writes acknowledged before the kill, {} lost; promote took \
                 {:.2}s; writes unavailable for {unavailable:.2}s",
                acked_before_kill.len(),
                lost.len(),
                promoted.duration_since(killed).as_secs_f64(),
            );
            assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
            let acked_total: BTreeSet<u64> = log.acked.iter().map(|(s, _)| *s).collect();
            assert!(acked_total.is_subset(&on_new_primary));

            // The status now shows one primary and an unreachable old one.
            let (code, out, _) = pair.rampart_db(&["status"]);
            assert_eq!(code, 1, "the old primary is down: {out}");
            assert!(out.contains("unreachable"), "{out}");

            // Rejoin: the old primary restarts (its settings still say writable, but the
            // fence keeps the application out) as a demoted primary must: with
            // --init-rpl-role=SLAVE, so that crash recovery drops a binlog tail the
            // replica never acknowledged. Then it replicates from the new primary.
            pair.primary.start_with(&["--init-rpl-role=SLAVE"]);
            let new_primary = pair.replica.host.name.clone();
            let mut args = vec![
                "rejoin".to_string(),
                pair.primary.host.name.clone(),
                "--primary".into(),
                new_primary,
                "--fence-hook".into(),
                fence_hook(),
                "--json".into(),
            ];
            args.extend(pair.rejoin_args());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = pair.rampart_db(&args);
            assert_eq!(code, 0, "rejoin: {out}{err}");
            assert_eq!(json(&out)["outcome"], "done");
            assert!(!fenced(&old), "rejoin lifts the fence");

            // Both agree, and semi-sync protects the new primary again.
            let checksum =
                |s: &support::Server| s.must(&format!("CHECKSUM TABLE {DATABASE}.visits"));
            assert_eq!(Pair::visits(&pair.primary), Pair::visits(&pair.replica));
            assert_eq!(
                checksum(&pair.primary).split('\t').nth(1),
                checksum(&pair.replica).split('\t').nth(1)
            );
            pair.replica.must(&format!(
                "INSERT INTO {DATABASE}.visits (seq) VALUES (999999)"
            ));
            let (code, out, err) = pair.rampart_db(&["status", "--json"]);
            assert_eq!(code, 0, "after rejoin: {out}{err}");
            let status = json(&out);
            assert_eq!(status["hosts"][0]["role"], "replica");
            assert_eq!(status["hosts"][1]["role"], "primary");
            assert_eq!(status["hosts"][1]["semiSync"]["masterOn"], true);
        },
    );
}

#[test]
fn promote_refuses_while_the_replica_lags_behind_a_reachable_primary() {
    isolated(
        "promote_refuses_while_the_replica_lags_behind_a_reachable_primary",
        || {
            let pair = Pair::start();
            let hook = fence_hook();
            // Received but not applied: the replica lags while the primary is fine.
            pair.replica.must("STOP SLAVE SQL_THREAD");
            for seq in 1..=20 {
                pair.primary.must(&format!(
                    "INSERT INTO {DATABASE}.visits (seq) VALUES ({seq})"
                ));
            }
            let primary_pos = pair.primary.must("SELECT @@global.gtid_binlog_pos");
            let replica = pair.replica.host.name.clone();

            let (code, out, err) =
                pair.rampart_db(&["promote", &replica, "--fence-hook", &hook, "--json"]);
            assert_eq!(code, 1, "refused: {out}{err}");
            let report = json(&out);
            assert_eq!(report["outcome"], "refused");
            let reason = report["reason"].as_str().unwrap();
            assert!(
                reason.contains(&primary_pos),
                "names the position: {reason}"
            );
            assert!(reason.contains("SQL thread stopped"), "{reason}");
            assert!(reason.contains("--force"), "{reason}");
            // Nothing changed: the primary still takes writes, no fence, replica read-only.
            assert_eq!(pair.primary.must("SELECT @@global.read_only"), "0");
            assert_eq!(pair.replica.must("SELECT @@global.read_only"), "1");
            assert!(!fenced(&pair.primary.host.name));

            // The human form says the same.
            let (code, out, _) = pair.rampart_db(&["promote", &replica]);
            assert_eq!(code, 1);
            assert!(out.contains("promote web2: refused"), "{out}");

            // --force promotes anyway and says what it lost.
            let (code, out, err) = pair.rampart_db(&[
                "promote",
                &replica,
                "--force",
                "--fence-hook",
                &hook,
                "--timeout",
                "1",
                "--json",
            ]);
            assert_eq!(code, 0, "forced: {out}{err}");
            let report = json(&out);
            assert_eq!(report["outcome"], "done");
            assert!(
                report["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w.as_str().unwrap().starts_with("forced:")),
                "{report:#}"
            );
            assert_eq!(pair.primary.must("SELECT @@global.read_only"), "1");
            assert_eq!(pair.replica.must("SELECT @@global.read_only"), "0");
            assert!(fenced(&pair.primary.host.name));

            // The old primary now holds writes the new one never applied, and the new one
            // went on past their sequence numbers: rejoin must see the lost tail and
            // refuse, leaving the old primary fenced.
            for seq in 100..130 {
                pair.replica.must(&format!(
                    "INSERT INTO {DATABASE}.visits (seq) VALUES ({seq})"
                ));
            }
            let old = pair.primary.host.name.clone();
            let mut args = vec![
                "rejoin".to_string(),
                old.clone(),
                "--primary".into(),
                replica.clone(),
                "--fence-hook".into(),
                hook.clone(),
                "--json".into(),
            ];
            args.extend(pair.rejoin_args());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = pair.rampart_db(&args);
            assert_eq!(code, 1, "rejoin refused: {out}{err}");
            let report = json(&out);
            assert_eq!(report["outcome"], "refused", "{report:#}");
            let reason = report["reason"].as_str().unwrap();
            assert!(
                reason.contains(&format!("{primary_pos} (not on {replica})")),
                "names the lost tail: {reason}"
            );
            assert!(fenced(&old), "still fenced");
            assert_eq!(pair.primary.must("SELECT @@global.read_only"), "1");
        },
    );
}

#[test]
fn cannot_run_without_a_reachable_candidate_or_valid_input() {
    isolated(
        "cannot_run_without_a_reachable_candidate_or_valid_input",
        || {
            let root =
                std::env::temp_dir().join(format!("rampart-db-noinput-{}", std::process::id()));
            std::fs::create_dir_all(&root).unwrap();
            let password = root.join("pw");
            std::fs::write(&password, "x").unwrap();
            let topology = support::topology_path();
            let run = |args: &[&str]| {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart-db"))
                    .args(args)
                    .arg("--topology")
                    .arg(&topology)
                    .arg("--password-file")
                    .arg(&password)
                    .args(["--ca", "/nonexistent/ca.pem", "--connect-timeout", "1"])
                    .output()
                    .unwrap();
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            };
            // Nothing listens in this namespace: the candidate is unreachable.
            let (code, err) = run(&["promote", "web2"]);
            assert_eq!(code, Some(2), "{err}");
            assert!(
                err.contains("cannot connect to web2 (10.42.0.12:3306)"),
                "{err}"
            );

            let (code, err) = run(&["promote", "lb"]);
            assert_eq!(code, Some(2));
            assert!(
                err.contains("\"lb\" is not a database host (expected one of: web1, web2)"),
                "{err}"
            );

            let (code, err) = run(&["rejoin", "web1", "--primary", "web1"]);
            assert_eq!(code, Some(2));
            assert!(err.contains("cannot replicate from itself"), "{err}");

            let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart-db"))
                .args(["status", "--password-file", "/nonexistent/pw"])
                .arg("--topology")
                .arg(&topology)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("cannot read secret /nonexistent/pw"), "{err}");

            // Status reports every unreachable host and exits 1: it ran, and found problems.
            let (code, _) = run(&["status"]);
            assert_eq!(code, Some(1));
            std::fs::remove_dir_all(&root).unwrap();
        },
    );
}
