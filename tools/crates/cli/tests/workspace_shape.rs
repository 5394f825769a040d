//! The workspace's shape, held by a test (#17): each binary links only the crates it
//! uses. The application and certtool link nothing of the lab, the database or etcd
//! stack; tests may use the lab's daemon start-up (a dev-dependency, never linked into
//! the binary), so only normal and build dependencies count.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `package` links, resolved for it alone as `cargo tree -p` does
/// (`cargo metadata` unifies features across the workspace, which would credit the app
/// with what other binaries enable).
fn linked_by(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-p",
        ])
        .arg(package)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_app_and_certtool_link_none_of_the_lab_database_or_etcd_stack() {
    let heavy = [
        "rampart-lab",
        "rampart-database",
        "rampart-consensus",
        "etcd-client",
    ];
    // The walk sees the stack where it is linked (a test that cannot pass by reading nothing).
    assert!(linked_by("infralab").contains("rampart-lab"));
    for binary in ["rampart-app", "certtool"] {
        let linked = linked_by(binary);
        let wrong: Vec<&&str> = heavy.iter().filter(|h| linked.contains(**h)).collect();
        assert!(wrong.is_empty(), "{binary} links {wrong:?}");
    }
    // The app links no PKI stack either: rampart-cli is all it needs of ours.
    let app = linked_by("rampart-app");
    let ours: Vec<&String> = app.iter().filter(|n| n.starts_with("rampart-")).collect();
    assert_eq!(ours, ["rampart-cli"], "the app links {ours:?}");
    for stack in ["rampart-pki", "rcgen", "x509-parser", "aws-lc-sys"] {
        assert!(!app.contains(stack), "the app links {stack}");
    }
}
