//! Helpers shared by certtool's integration tests: run the real binary, and make
//! certificates with rcgen or with the `openssl` CLI from one description.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use time::{Duration, OffsetDateTime};

pub fn certtool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certtool"))
}

/// Runs certtool and returns (exit code, stdout, stderr); fails the test on a panic.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = certtool();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("certtool runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "certtool panicked: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// `certtool verify --json …`, parsed.
pub fn verify_json(args: &[&str], envs: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, envs);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {stdout}\n{stderr}"));
    (code, json)
}

/// The `(certificate file name, id, severity)` of every finding of a report.
pub fn findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for cert in report["certificates"].as_array().expect("certificates") {
        let path = cert["path"].as_str().unwrap();
        let name = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for f in cert["findings"].as_array().unwrap() {
            out.push((
                name.clone(),
                f["id"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// The error findings as `file:id`, sorted.
pub fn errors(report: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = findings(report)
        .into_iter()
        .filter(|(_, _, sev)| sev == "error")
        .map(|(file, id, _)| format!("{file}:{id}"))
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (apt package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    Rsa1024,
    Rsa2048,
}

/// One certificate to make; `issuer` None means self-signed.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `Some(pathlen)` for a CA (`Some(None)`: no pathlen).
    pub ca: Option<Option<u8>>,
    /// For a CA: keyUsage includes keyCertSign.
    pub key_cert_sign: bool,
    pub eku: Option<&'static str>,
    pub sans: Vec<String>,
    /// Validity in days relative to now.
    pub from_days: i64,
    pub until_days: i64,
    pub key: KeyKind,
    pub sha1: bool,
    /// Permitted DNS name constraints (CA).
    pub permitted_dns: Vec<String>,
}

impl Spec {
    pub fn ca() -> Spec {
        Spec {
            ca: Some(Some(0)),
            key_cert_sign: true,
            eku: None,
            sans: Vec::new(),
            from_days: -1,
            until_days: 365,
            key: KeyKind::P256,
            sha1: false,
            permitted_dns: Vec::new(),
        }
    }

    pub fn server(name: &str) -> Spec {
        Spec {
            ca: None,
            key_cert_sign: false,
            eku: Some("serverAuth"),
            sans: vec![name.to_string()],
            from_days: -1,
            until_days: 90,
            ..Spec::ca()
        }
    }
}

/// A made certificate: `<dir>/<name>.pem` and its key `<dir>/<name>.key` (mode 0600).
#[derive(Clone, Debug)]
pub struct Made {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub trait Maker {
    fn label(&self) -> &'static str;
    fn make(&self, dir: &Path, name: &str, spec: &Spec, issuer: Option<&Made>) -> Made;
}

fn instant(days: i64) -> OffsetDateTime {
    (OffsetDateTime::now_utc() + Duration::days(days))
        .replace_nanosecond(0)
        .unwrap()
}

fn openssl_key(dir: &Path, file: &str, kind: KeyKind) {
    let spec: &[&str] = match kind {
        KeyKind::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::Rsa1024 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        KeyKind::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(spec);
    args.extend_from_slice(&["-out", file]);
    openssl(&args, dir);
    std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Certificates made by rcgen (RSA-1024 keys come from openssl: aws-lc-rs will not make them).
pub struct Rcgen;

impl Maker for Rcgen {
    fn label(&self) -> &'static str {
        "rcgen"
    }

    fn make(&self, dir: &Path, name: &str, spec: &Spec, issuer: Option<&Made>) -> Made {
        use rcgen::KeyPair;
        assert!(
            !spec.sha1,
            "rcgen cannot sign with SHA-1; use the openssl maker"
        );
        let key_file = format!("{name}.key");
        let key_path = dir.join(&key_file);
        let key = match spec.key {
            KeyKind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            KeyKind::Rsa2048 => KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap(),
            KeyKind::Rsa1024 => {
                openssl_key(dir, &key_file, KeyKind::Rsa1024);
                let pem = std::fs::read_to_string(&key_path).unwrap();
                // aws-lc-rs refuses to sign with 1024-bit RSA, but the key only needs
                // to be certified here, never to sign.
                let public = public_pem(dir, &key_file);
                return self.finish(
                    dir,
                    name,
                    spec,
                    issuer,
                    &rcgen::SubjectPublicKeyInfo::from_pem(&public).unwrap(),
                    Some(pem),
                );
            }
        };
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        match issuer {
            None => {
                let params = params(name, spec);
                let cert = params.self_signed(&key).unwrap();
                std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
                Made {
                    cert: dir.join(format!("{name}.pem")),
                    key: key_path,
                }
            }
            Some(_) => self.finish(dir, name, spec, issuer, &key, None),
        }
    }
}

fn public_pem(dir: &Path, key_file: &str) -> String {
    let out = Command::new("openssl")
        .args(["pkey", "-in", key_file, "-pubout"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn params(name: &str, spec: &Spec) -> rcgen::CertificateParams {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
        KeyUsagePurpose, NameConstraints, SanType,
    };
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.not_before = instant(spec.from_days);
    p.not_after = instant(spec.until_days);
    // Positive and unique per certificate: a made-up serial, as any CA would pick.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut serial = vec![0x41];
    serial.extend((OffsetDateTime::now_utc().unix_timestamp_nanos() as u64).to_be_bytes());
    serial.extend(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_be_bytes(),
    );
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    match spec.ca {
        Some(pathlen) => {
            p.is_ca = IsCa::Ca(match pathlen {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            });
            p.key_usages = if spec.key_cert_sign {
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
            } else {
                vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
            };
            if !spec.permitted_dns.is_empty() {
                p.name_constraints = Some(NameConstraints {
                    permitted_subtrees: spec
                        .permitted_dns
                        .iter()
                        .map(|d| GeneralSubtree::DnsName(d.clone()))
                        .collect(),
                    excluded_subtrees: Vec::new(),
                });
            }
        }
        None => {
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.use_authority_key_identifier_extension = true;
        }
    }
    p.extended_key_usages = match spec.eku {
        Some("serverAuth") => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Some("clientAuth") => vec![ExtendedKeyUsagePurpose::ClientAuth],
        _ => Vec::new(),
    };
    p.subject_alt_names = spec
        .sans
        .iter()
        .map(|n| match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(n.clone().try_into().unwrap()),
        })
        .collect();
    p
}

impl Rcgen {
    fn finish(
        &self,
        dir: &Path,
        name: &str,
        spec: &Spec,
        issuer: Option<&Made>,
        public: &impl rcgen::PublicKeyData,
        key_pem: Option<String>,
    ) -> Made {
        let issuer = issuer.expect("an issued certificate");
        let ca_key =
            rcgen::KeyPair::from_pem(&std::fs::read_to_string(&issuer.key).unwrap()).unwrap();
        let ca = rcgen::Issuer::from_ca_cert_pem(
            &std::fs::read_to_string(&issuer.cert).unwrap(),
            ca_key,
        )
        .unwrap();
        let cert = params(name, spec).signed_by(public, &ca).unwrap();
        let cert_path = dir.join(format!("{name}.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let key_path = dir.join(format!("{name}.key"));
        if let Some(pem) = key_pem {
            std::fs::write(&key_path, pem).unwrap();
        }
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Made {
            cert: cert_path,
            key: key_path,
        }
    }
}

/// Certificates made by the `openssl` CLI (`genpkey`, `req`, `ca`).
pub struct Openssl;

const CA_CONF: &str = "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = newcerts\nrand_serial = yes\npolicy = p\ndefault_md = sha256\nunique_subject = no\n[p]\ncommonName = supplied\n";

impl Maker for Openssl {
    fn label(&self) -> &'static str {
        "openssl"
    }

    fn make(&self, dir: &Path, name: &str, spec: &Spec, issuer: Option<&Made>) -> Made {
        let work = dir.join(format!(".openssl-{name}"));
        std::fs::create_dir_all(work.join("newcerts")).unwrap();
        std::fs::write(work.join("index.txt"), "").unwrap();
        std::fs::write(work.join("ca.cnf"), CA_CONF).unwrap();
        let mut ext = String::from("[x]\nsubjectKeyIdentifier = hash\n");
        match spec.ca {
            Some(pathlen) => {
                ext += &match pathlen {
                    Some(n) => format!("basicConstraints = critical,CA:TRUE,pathlen:{n}\n"),
                    None => "basicConstraints = critical,CA:TRUE\n".to_string(),
                };
                ext += if spec.key_cert_sign {
                    "keyUsage = critical,keyCertSign,cRLSign\n"
                } else {
                    "keyUsage = critical,cRLSign,digitalSignature\n"
                };
                if !spec.permitted_dns.is_empty() {
                    let list: Vec<String> = spec
                        .permitted_dns
                        .iter()
                        .map(|d| format!("permitted;DNS:{d}"))
                        .collect();
                    ext += &format!("nameConstraints = critical,{}\n", list.join(","));
                }
            }
            None => {
                ext += "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nauthorityKeyIdentifier = keyid\n";
            }
        }
        if let Some(eku) = spec.eku {
            ext += &format!("extendedKeyUsage = {eku}\n");
        }
        if !spec.sans.is_empty() {
            let sans: Vec<String> = spec
                .sans
                .iter()
                .map(|n| {
                    if n.parse::<std::net::IpAddr>().is_ok() {
                        format!("IP:{n}")
                    } else {
                        format!("DNS:{n}")
                    }
                })
                .collect();
            ext += &format!("subjectAltName = {}\n", sans.join(","));
        }
        std::fs::write(work.join("ext.cnf"), ext).unwrap();
        let key_path = dir.join(format!("{name}.key"));
        let cert_path = dir.join(format!("{name}.pem"));
        openssl_key(&work, "key.pem", spec.key);
        std::fs::copy(work.join("key.pem"), &key_path).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        openssl(
            &[
                "req",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                &format!("/CN={name}"),
                "-out",
                "req.csr",
            ],
            &work,
        );
        let fmt = |t: OffsetDateTime| {
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        let start = fmt(instant(spec.from_days));
        let end = fmt(instant(spec.until_days));
        let md = if spec.sha1 { "sha1" } else { "sha256" };
        let mut args: Vec<String> = [
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-in",
            "req.csr",
            "-out",
            "cert.pem",
            "-notext",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "x",
            "-md",
            md,
            "-startdate",
            &start,
            "-enddate",
            &end,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match issuer {
            None => args.extend(["-selfsign".into(), "-keyfile".into(), "key.pem".into()]),
            Some(ca) => args.extend([
                "-cert".into(),
                ca.cert.display().to_string(),
                "-keyfile".into(),
                ca.key.display().to_string(),
            ]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&args, &work);
        std::fs::copy(work.join("cert.pem"), &cert_path).unwrap();
        std::fs::remove_dir_all(&work).unwrap();
        Made {
            cert: cert_path,
            key: key_path,
        }
    }
}
