//! Property tests: mutated certificates, PEM files and keys never make the loader or
//! `verify` panic, and every failure names the file. Bounded: 256 cases per property.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use rampart_pki::load;
use rampart_pki::verify::{verify, VerifyOptions};

struct Material {
    dir: tempfile::TempDir,
    ca: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

/// One CA and one leaf, made once for all cases.
fn material() -> &'static Material {
    static M: OnceLock<Material> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["svc.rampart.internal".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Material {
            ca,
            cert_pem: leaf.pem(),
            cert_der: leaf.der().to_vec(),
            key_pem: key.serialize_pem(),
            dir,
        }
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    DropLine { line: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        any::<usize>().prop_map(|line| Mutation::DropLine { line }),
    ]
}

fn apply(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip { at, xor } => {
                if !bytes.is_empty() {
                    let i = at % len;
                    bytes[i] ^= xor;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Insert { at, bytes: extra } => {
                let i = at % (bytes.len() + 1);
                bytes.splice(i..i, extra.iter().copied());
            }
            Mutation::DropLine { line } => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let n = line % lines.len();
                    lines.remove(n);
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    bytes
}

fn write_case(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(material().dir.path()).unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Full verify of one file: it must either be checked or be a load error naming it.
fn verify_names_or_checks(path: &Path) {
    let options = VerifyOptions {
        topology: None,
        ca: Some(material().ca.clone()),
        paths: vec![path.to_path_buf()],
        key: None,
        names: Vec::new(),
        purpose: None,
        at: time::OffsetDateTime::now_utc(),
        warn_within: time::Duration::days(30),
        store_dir: PathBuf::from("/nix/store"),
    };
    let report = verify(&options).expect("the CA is good, so verify runs");
    let shown = path.display().to_string();
    let checked = report
        .certificates
        .iter()
        .any(|c| c.path.starts_with(&shown));
    let named = report
        .load_errors
        .iter()
        .any(|e| e.message.contains(&shown));
    assert!(
        checked || named,
        "{shown} neither checked nor named: {report:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_pem_certificates_never_panic(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = apply(material().cert_pem.as_bytes(), &mutations);
        let (_guard, path) = write_case("leaf.pem", &bytes);
        if let Err(e) = load::parse_certificates(&path, &bytes) {
            prop_assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
        }
        verify_names_or_checks(&path);
    }

    #[test]
    fn mutated_der_certificates_never_panic(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = apply(&material().cert_der, &mutations);
        let (_guard, path) = write_case("leaf.der", &bytes);
        let _ = load::parse_certificates(&path, &bytes);
        verify_names_or_checks(&path);
    }

    #[test]
    fn mutated_keys_never_panic(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = apply(material().key_pem.as_bytes(), &mutations);
        if let Err(e) = load::parse_private_key(Path::new("k.key"), &bytes) {
            prop_assert!(e.to_string().starts_with("k.key: "), "{e}");
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = load::parse_certificates(Path::new("r.pem"), &bytes);
        let _ = load::parse_private_key(Path::new("r.key"), &bytes);
    }
}
