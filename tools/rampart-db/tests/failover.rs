//! rampart-db's input checks: every bad input exits 2 with the reason (the agents, with
//! real servers, are tested in `agent.rs`).
//!
//! Runs in its own network namespace (see `support`), where nothing listens.

mod support;

use support::isolated;

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
            // Nothing listens in this namespace: etcd is unreachable.
            let (code, err) = run(&["promote", "web2", "--etcd", "http://10.42.0.12:2379"]);
            assert_eq!(code, Some(2), "{err}");
            assert!(err.contains("etcd: "), "{err}");
            let (code, err) = run(&["promote", "web2"]);
            assert_eq!(code, Some(2), "{err}");
            assert!(err.contains("no etcd endpoints"), "{err}");

            let (code, err) = run(&["promote", "lb", "--etcd", "http://10.42.0.12:2379"]);
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

            // Status reports an unreachable etcd and every unreachable host, and exits 1:
            // it ran, and found problems.
            let (code, _) = run(&["status", "--etcd", "http://10.42.0.12:2379"]);
            assert_eq!(code, Some(1));
            std::fs::remove_dir_all(&root).unwrap();
        },
    );
}
