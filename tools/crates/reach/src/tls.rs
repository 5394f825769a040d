//! The TLS profile of every TLS endpoint the vantage may reach: protocols, cipher suites,
//! key-exchange groups, the certificate's key and signature, and its chain.
//!
//! Which endpoints: every declared service of every host that the policy lets the vantage
//! reach (and every service of the vantage's own host) is asked what it speaks. A server
//! that answers a ClientHello is a TLS endpoint; one that greets first as MariaDB and
//! offers SSL is one too, after the MySQL preamble (STARTTLS); anything else (plain HTTP,
//! SSH) is not TLS and gets no line. So a new TLS service in the topology (etcd) is
//! judged without reach knowing its name.
//!
//! What is asked, each with an OpenSSL client that offers exactly that
//! (rampart_probe::handshake): every protocol version alone; every suite outside the
//! profile (offer them all, note the one the server picks, offer the rest again, until
//! it refuses) and every suite of the profile alone; every key-exchange group alone,
//! under TLS 1.3 and under TLS 1.2. Acceptance is the server's ServerHello, so a server
//! that wants a client certificate is judged all the same. A handful of handshakes per
//! endpoint run at once, so a database with few connection slots is not crowded.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::profile::Profile;
use crate::report::{Check, Kind, Status};
use rampart_probe::handshake::{
    self, supported_groups, Certificate, Offer, Outcome, Speaks, Starttls, Version, TLS13_SUITES,
};
use rampart_topology::Topology;

use super::vantage::Vantage;

/// Handshakes in flight per endpoint, and for the whole run.
const PER_ENDPOINT: usize = 4;
const PER_RUN: usize = 12;
/// Attempts of a handshake that gets no answer at all.
const ATTEMPTS: usize = 3;
/// Rounds of "offer everything outside the profile" before giving up on listing more.
const MAX_EXTRA_SUITES: usize = 64;

/// A declared service the vantage may reach.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub service: String,
    pub address: SocketAddr,
    /// The name its certificate must carry (`<host>.<domain>`), also sent as SNI.
    pub name: String,
}

impl Endpoint {
    fn probe(&self, what: impl std::fmt::Display) -> String {
        format!("{}/{} {what}", self.address.port(), self.service)
    }

    /// `check` names this endpoint and `profile`; a ✘ is a violation of the profile.
    fn label(&self, mut check: Check, profile: &Profile) -> Check {
        check.service = Some(self.service.clone());
        check.profile = Some(profile.id.clone());
        match check.status {
            Status::Fail if !is_unseen(&check) => check.with_kind(Kind::TlsProfile),
            _ => check,
        }
    }

    /// Where the daemon behind it gets its TLS settings from.
    fn fix(&self) -> String {
        let renderer = match self.service.as_str() {
            "https" => "HAProxy, lib/render/haproxy.nix",
            "backendHttps" => "nginx, lib/render/nginx.nix",
            "mysql" => "MariaDB, lib/render/mariadb.nix and its openssl.cnf",
            _ => "its daemon's TLS settings",
        };
        format!("render it from settings.tls.profile ({renderer})")
    }
}

/// Every declared service the vantage may reach, its own host's included.
pub fn endpoints(topology: &Topology, vantage: &Vantage) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for host in &topology.hosts {
        for (service, port) in topology.services_on(host) {
            if vantage.is(host) || topology.allows(vantage.source(), host, service) {
                out.push(Endpoint {
                    host: host.name.clone(),
                    service: service.to_string(),
                    address: SocketAddr::from((host.address, port)),
                    name: topology.fqdn(host),
                });
            }
        }
    }
    out
}

/// What one endpoint accepted.
#[derive(Debug, Default)]
struct Scan {
    versions: Vec<(Version, bool)>,
    /// Versions no handshake got an answer for (timeouts, resets), with the last error.
    no_answer: Vec<(Version, String)>,
    suites: Vec<(Version, String)>,
    groups: Vec<(Version, String)>,
    /// Groups whose handshake got no answer at all, with the version asked.
    groups_unanswered: Vec<(Version, String)>,
    certificate: Option<Result<Certificate, String>>,
}

struct Asker<'a> {
    endpoint: &'a Endpoint,
    starttls: Starttls,
    timeout: Duration,
    slots: Semaphore,
    /// Shared by every endpoint of the run.
    everyone: &'a Semaphore,
}

impl Asker<'_> {
    /// One offer; `Err` when no attempt got an answer at all (no connection, no TLS
    /// answer in time), which under load is the network's word, not the server's.
    async fn try_ask(&self, offer: &Offer) -> Result<Outcome, String> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let _slot = self.slots.acquire().await;
            let _turn = self.everyone.acquire().await;
            let sni = Some(self.endpoint.name.as_str());
            match handshake::handshake(
                self.endpoint.address,
                sni,
                self.starttls,
                offer,
                self.timeout,
            )
            .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(e) => last = e,
            }
        }
        Err(format!("no answer in {ATTEMPTS} attempts: {last}"))
    }

    /// One offer, an unanswered one counting as refused.
    async fn ask(&self, offer: Offer) -> Outcome {
        self.try_ask(&offer).await.unwrap_or_default()
    }

    /// Suites of `version` outside `allowed` that the server picks, one round each.
    async fn extra_suites(&self, version: Version, allowed: &[String]) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for _ in 0..MAX_EXTRA_SUITES {
            let offer = if version == Version::Tls13 {
                let rest: Vec<&str> = TLS13_SUITES
                    .into_iter()
                    .filter(|s| !allowed.iter().any(|a| a == s) && !found.iter().any(|f| f == s))
                    .collect();
                if rest.is_empty() {
                    break;
                }
                Offer {
                    version: Some(version),
                    suites: Some(rest.join(":")),
                    ..Offer::default()
                }
            } else {
                let mut ciphers = String::from("ALL:COMPLEMENTOFALL");
                for c in allowed.iter().chain(&found) {
                    ciphers.push_str(":!");
                    ciphers.push_str(c);
                }
                Offer {
                    version: Some(version),
                    ciphers: Some(ciphers),
                    ..Offer::default()
                }
            };
            let outcome = self.ask(offer).await;
            match outcome.cipher {
                Some(c) if outcome.accepted && !found.contains(&c) => found.push(c),
                _ => break,
            }
        }
        found
    }

    /// The suites of `allowed` the server takes under `version`, each offered alone.
    async fn allowed_suites(&self, version: Version, allowed: &[String]) -> Vec<String> {
        let asks = allowed.iter().map(|s| {
            let offer = if version == Version::Tls13 {
                Offer {
                    version: Some(version),
                    suites: Some(s.clone()),
                    ..Offer::default()
                }
            } else {
                Offer {
                    version: Some(version),
                    ciphers: Some(s.clone()),
                    ..Offer::default()
                }
            };
            async move { (s.clone(), self.ask(offer).await.accepted) }
        });
        super::join_all(asks)
            .await
            .into_iter()
            .filter(|(_, ok)| *ok)
            .map(|(s, _)| s)
            .collect()
    }

    /// The groups the server takes under `version`, each offered alone (under TLS 1.2
    /// with ECDHE suites only, so an answer is that group's), and the groups whose
    /// handshakes got no answer (a daemon stopped or stalled halfway through the scan).
    async fn groups(&self, version: Version) -> (Vec<String>, Vec<String>) {
        let asks = supported_groups(version).into_iter().map(|g| {
            let offer = Offer {
                version: Some(version),
                groups: Some(g.to_string()),
                ciphers: (version != Version::Tls13).then(|| "ECDHE".to_string()),
                ..Offer::default()
            };
            async move { (g, self.try_ask(&offer).await) }
        });
        let mut found: Vec<String> = Vec::new();
        let mut unanswered = Vec::new();
        for (g, answer) in super::join_all(asks).await {
            match answer {
                Ok(o) if o.accepted => found.push(o.group.unwrap_or_else(|| g.to_string())),
                Ok(_) => {}
                Err(_) => unanswered.push(g.to_string()),
            }
        }
        found.dedup();
        (found, unanswered)
    }

    async fn scan(&self, profile: &Profile, anchors: Option<&[u8]>) -> Scan {
        let answers = super::join_all(Version::ALL.into_iter().map(|v| async move {
            let offer = Offer {
                version: Some(v),
                ..Offer::default()
            };
            (v, self.try_ask(&offer).await)
        }))
        .await;
        let mut scan = Scan::default();
        let mut outcomes = Vec::new();
        for (v, answer) in answers {
            match answer {
                Ok(o) => {
                    scan.versions.push((v, o.accepted));
                    outcomes.push((v, o));
                }
                Err(e) => {
                    scan.versions.push((v, false));
                    scan.no_answer.push((v, e));
                }
            }
        }
        let accepted: Vec<Version> = scan
            .versions
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(v, _)| *v)
            .collect();
        // The certificate of the newest version the server speaks.
        if let Some((_, o)) = outcomes
            .iter()
            .rev()
            .find(|(_, o)| o.accepted && !o.chain.is_empty())
        {
            scan.certificate = Some(match anchors {
                Some(a) => handshake::inspect(&o.chain, a, &self.endpoint.name),
                None => handshake::inspect(&o.chain, b"", &self.endpoint.name),
            });
        }
        // Suites and groups of the versions the profile has (a version outside it is a
        // finding already; what it would negotiate adds nothing).
        let in_profile: Vec<Version> = accepted
            .iter()
            .copied()
            .filter(|v| profile.tls_versions.iter().any(|p| p == v.name()))
            .collect();
        let per_version = super::join_all(in_profile.iter().map(|&v| async move {
            let allowed: &[String] = if v == Version::Tls13 {
                &profile.ciphersuites
            } else {
                &profile.ciphers
            };
            let (extra, inside, groups) = tokio::join!(
                self.extra_suites(v, allowed),
                self.allowed_suites(v, allowed),
                self.groups(v),
            );
            (v, extra, inside, groups)
        }))
        .await;
        for (v, extra, inside, (groups, unanswered)) in per_version {
            scan.suites
                .extend(inside.into_iter().chain(extra).map(|s| (v, s)));
            scan.groups.extend(groups.into_iter().map(|g| (v, g)));
            scan.groups_unanswered
                .extend(unanswered.into_iter().map(|g| (v, g)));
        }
        scan
    }
}

/// A summary line (✔, or · when the findings below carry a failure) and the findings.
/// A ✘ that says reach could not see the endpoint (no answer, no connection, a certificate
/// it could not read), not that the endpoint accepts something outside its profile: a
/// daemon that is down or cut off is NginxDown's or a partition's alert, and
/// rampart_tls_profile_violations must not count it (measured: nginx stopped on web1
/// fired ReachTlsProfileViolation beside NginxDown).
fn is_unseen(check: &Check) -> bool {
    matches!(check.observed.as_str(), "no answer" | "unreadable")
}

fn aspect(
    endpoint: &Endpoint,
    what: &str,
    expected: String,
    observed: String,
    findings: Vec<Check>,
) -> Vec<Check> {
    let mut summary = Check::new("tls", &endpoint.host, endpoint.probe(what)).with_status(
        if findings.iter().all(|f| f.status != Status::Fail) {
            Status::Pass
        } else {
            Status::Info
        },
    );
    summary.expected = expected;
    summary.observed = observed;
    std::iter::once(summary).chain(findings).collect()
}

fn finding(
    endpoint: &Endpoint,
    what: String,
    expected: String,
    observed: &str,
    reason: String,
) -> Check {
    Check::new("tls", &endpoint.host, endpoint.probe(what))
        .judged(false, expected, observed)
        .with_reason(reason)
}

/// A finding about something the endpoint accepts that a waiver covers becomes a listed
/// line (·) with the waiver's reason.
fn waive(endpoint: &Endpoint, profile: &Profile, item: &str, check: Check) -> Check {
    match profile.waiver(&endpoint.service, item) {
        Some(w) if check.status == Status::Fail => check
            .with_status(Status::Info)
            .with_reason(format!("waived (lib/tls-profiles.json): {}", w.reason)),
        _ => check,
    }
}

/// The checks of one TLS endpoint's scan.
fn judge(endpoint: &Endpoint, profile: &Profile, scan: &Scan, has_anchors: bool) -> Vec<Check> {
    let fix = endpoint.fix();
    let mut out = Vec::new();
    let in_profile = |list: &[String], item: &str| list.iter().any(|x| x == item);

    // Protocols.
    let accepted: Vec<&str> = scan
        .versions
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(v, _)| v.name())
        .collect();
    let mut findings = Vec::new();
    for (v, ok) in &scan.versions {
        let allowed = in_profile(&profile.tls_versions, v.name());
        if *ok && !allowed {
            findings.push(waive(
                endpoint,
                profile,
                v.name(),
                finding(
                    endpoint,
                    format!("protocol {}", v.name()),
                    format!("refused ({})", profile.says(&profile.tls_versions)),
                    "accepted",
                    format!("an old protocol outside the profile: {fix}"),
                ),
            ));
        } else if !ok && allowed {
            let silent = scan.no_answer.iter().find(|(n, _)| n == v);
            findings.push(finding(
                endpoint,
                format!("protocol {}", v.name()),
                "accepted".into(),
                if silent.is_some() {
                    "no answer"
                } else {
                    "refused"
                },
                match silent {
                    Some((_, e)) => format!("{e}: is the daemon overloaded or gone?"),
                    None => format!("the profile has {}: {fix}", v.name()),
                },
            ));
        }
    }
    out.extend(aspect(
        endpoint,
        "protocols",
        profile.says(&profile.tls_versions),
        accepted.join(", "),
        findings,
    ));

    // Suites, per version.
    let versions: BTreeSet<Version> = scan.suites.iter().map(|(v, _)| *v).collect();
    for v in versions {
        let allowed = if v == Version::Tls13 {
            &profile.ciphersuites
        } else {
            &profile.ciphers
        };
        let suites: Vec<&String> = scan
            .suites
            .iter()
            .filter(|(sv, _)| *sv == v)
            .map(|(_, s)| s)
            .collect();
        let findings = suites
            .iter()
            .filter(|s| !in_profile(allowed, s))
            .map(|s| {
                waive(
                    endpoint,
                    profile,
                    s,
                    finding(
                        endpoint,
                        format!("suite {} {s}", v.name()),
                        format!("refused (not in {})", profile.name),
                        "accepted",
                        format!("a cipher suite outside the profile: {fix}"),
                    ),
                )
            })
            .collect();
        out.extend(aspect(
            endpoint,
            &format!("suites {}", v.name()),
            format!("{} suites only", profile.name),
            suites
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            findings,
        ));
    }

    // Groups.
    if !scan.groups.is_empty() || accepted.contains(&"TLSv1.3") || accepted.contains(&"TLSv1.2") {
        let mut names: Vec<&str> = Vec::new();
        for (_, g) in &scan.groups {
            if !names.contains(&g.as_str()) {
                names.push(g);
            }
        }
        // In handshake::GROUPS order (strong and common first), whatever the scan order.
        names.sort_by_key(|g| {
            handshake::GROUPS
                .iter()
                .position(|x| x == g)
                .unwrap_or(usize::MAX)
        });
        let mut findings = Vec::new();
        for g in names.iter().filter(|g| !in_profile(&profile.tls_curves, g)) {
            let under: Vec<&str> = scan
                .groups
                .iter()
                .filter(|(_, x)| x == g)
                .map(|(v, _)| v.name())
                .collect();
            findings.push(waive(
                endpoint,
                profile,
                g,
                finding(
                    endpoint,
                    format!("group {g}"),
                    format!("refused ({})", profile.says(&profile.tls_curves)),
                    &format!("accepted ({})", under.join(", ")),
                    format!("a key-exchange group outside the profile: {fix}"),
                ),
            ));
        }
        if !scan
            .groups
            .iter()
            .any(|(_, g)| in_profile(&profile.tls_curves, g))
        {
            // A group of the profile that got no answer may be accepted after all: the
            // daemon stopped or stalled after answering the protocol probes (measured:
            // lb's etcd member stopped, web1's nginx stopped, mid-scan).
            let silent: BTreeSet<&str> = scan
                .groups_unanswered
                .iter()
                .filter(|(_, g)| in_profile(&profile.tls_curves, g))
                .map(|(_, g)| g.as_str())
                .collect();
            findings.push(finding(
                endpoint,
                "groups".into(),
                format!("some of {}", profile.says(&profile.tls_curves)),
                if silent.is_empty() {
                    "none accepted"
                } else {
                    "no answer"
                },
                if silent.is_empty() {
                    format!("no key-exchange group of the profile: {fix}")
                } else {
                    format!(
                        "no answer to the handshakes offering {}: is the daemon overloaded or gone?",
                        silent.into_iter().collect::<Vec<_>>().join(", ")
                    )
                },
            ));
        }
        out.extend(aspect(
            endpoint,
            "groups",
            format!("only {}", profile.says(&profile.tls_curves)),
            names.join(", "),
            findings,
        ));
    }

    // Certificate and chain.
    match &scan.certificate {
        None => {}
        Some(Err(e)) => out.push(finding(
            endpoint,
            "certificate".into(),
            "a certificate".into(),
            "unreadable",
            e.clone(),
        )),
        Some(Ok(cert)) => {
            out.extend(certificate(endpoint, profile, cert));
            let chain = Check::new("tls", &endpoint.host, endpoint.probe("chain"));
            out.push(if !has_anchors {
                chain.skipped("no rampart CA to verify against: pass --ca")
            } else {
                match &cert.verified {
                    Ok(()) => chain.judged(
                        true,
                        "verified by the rampart CA",
                        format!("verified for {}", endpoint.name),
                    ),
                    Err(e) => chain
                        .judged(false, "verified by the rampart CA", "rejected")
                        .with_reason(format!("{e}: reissue it with `certtool issue`")),
                }
            });
        }
    }
    out
}

fn certificate(endpoint: &Endpoint, profile: &Profile, cert: &Certificate) -> Vec<Check> {
    let key = match (&cert.curve, cert.rsa_bits) {
        (Some(curve), _) => format!("{} {curve}", cert.key_type),
        (None, Some(bits)) => format!("{} {bits}", cert.key_type),
        _ => cert.key_type.clone(),
    };
    let observed = format!("{key}, {}, {} days", cert.signature, cert.lifespan_days);
    let reissue = "reissue it (certtool issue) with a key and signature the profile allows";
    let mut findings = Vec::new();
    let mut bad = |what: &str, expected: String, observed: String| {
        findings.push(finding(
            endpoint,
            format!("certificate {what}"),
            expected,
            &observed,
            reissue.into(),
        ));
    };
    if !profile.certificate_types.contains(&cert.key_type) {
        bad("key", profile.says(&profile.certificate_types), key.clone());
    }
    if let Some(curve) = &cert.curve {
        if !profile.certificate_curves.contains(curve) {
            bad(
                "curve",
                profile.says(&profile.certificate_curves),
                curve.clone(),
            );
        }
    }
    if let (Some(bits), Some(min)) = (cert.rsa_bits, profile.rsa_key_size) {
        if bits < min {
            bad("key size", format!("≥ {min} bits"), format!("{bits} bits"));
        }
    }
    if !profile.certificate_signatures.contains(&cert.signature) {
        bad(
            "signature",
            profile.says(&profile.certificate_signatures),
            cert.signature.clone(),
        );
    }
    if cert.lifespan_days > profile.maximum_certificate_lifespan {
        bad(
            "lifespan",
            format!(
                "≤ {} days ({})",
                profile.maximum_certificate_lifespan, profile.name
            ),
            format!("{} days", cert.lifespan_days),
        );
    }
    aspect(
        endpoint,
        "certificate",
        format!(
            "{} key, {} signature, ≤ {} days",
            profile.certificate_types.join("|"),
            profile.name,
            profile.maximum_certificate_lifespan
        ),
        observed,
        findings,
    )
}

/// How many handshakes a whole run may have in flight (pass one to every [`endpoint`]).
pub fn run_limit() -> Semaphore {
    Semaphore::new(PER_RUN)
}

/// One TLS endpoint against `profile` (`anchors`: the rampart CA, PEM, for the chain).
/// Each handshake may take `timeout` (at least two seconds: a busy host answers late).
pub async fn endpoint(
    ep: &Endpoint,
    starttls: Starttls,
    profile: &Profile,
    anchors: Option<&[u8]>,
    timeout: Duration,
    everyone: &Semaphore,
) -> Vec<Check> {
    let asker = Asker {
        endpoint: ep,
        starttls,
        timeout: timeout.max(Duration::from_secs(2)),
        slots: Semaphore::new(PER_ENDPOINT),
        everyone,
    };
    let scan = asker.scan(profile, anchors).await;
    judge(ep, profile, &scan, anchors.is_some())
        .into_iter()
        .map(|c| ep.label(c, profile))
        .collect()
}

/// The `tls` group from the vantage: every reachable TLS endpoint against `profile`.
pub async fn check(
    topology: &Topology,
    vantage: &Vantage<'_>,
    profile: &Profile,
    anchors: Option<&[u8]>,
    timeout: Duration,
) -> Vec<Check> {
    let candidates = endpoints(topology, vantage);
    let everyone = run_limit();
    let everyone = &everyone;
    let spoken = super::join_all(candidates.iter().map(|ep| async move {
        // Silence may be a busy host: ask again before calling it not TLS.
        let mut speaks = Speaks::Other(String::new());
        for _ in 0..ATTEMPTS {
            let _turn = everyone.acquire().await;
            speaks = handshake::detect(ep.address, Some(&ep.name), timeout).await;
            if speaks != Speaks::Other("no answer".into()) {
                break;
            }
        }
        (ep, speaks)
    }))
    .await;
    let mut out = Vec::new();
    let mut tls = Vec::new();
    for (ep, speaks) in spoken {
        match speaks {
            Speaks::Tls => tls.push((ep, Starttls::None)),
            Speaks::MysqlTls => tls.push((ep, Starttls::Mysql)),
            Speaks::MysqlPlain(why) if why.starts_with("refused") => out.push(
                Check::new("tls", &ep.host, ep.probe("tls")).skipped(format!(
                    "MariaDB {why}, so its TLS cannot be probed from {}",
                    vantage.name
                )),
            ),
            Speaks::MysqlPlain(why) => out.push(
                ep.label(
                    Check::new("tls", &ep.host, ep.probe("tls"))
                        .judged(false, "TLS", "plaintext")
                        .with_reason(format!(
                            "{why}: configure ssl_cert/ssl_key (lib/render/mariadb.nix)"
                        )),
                    profile,
                ),
            ),
            Speaks::Other(_) => {}
        }
    }
    let judged = super::join_all(
        tls.into_iter()
            .map(|(ep, starttls)| endpoint(ep, starttls, profile, anchors, timeout, everyone)),
    )
    .await;
    out.extend(judged.into_iter().flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "lb".into(),
            service: "https".into(),
            address: "10.42.0.10:443".parse().unwrap(),
            name: "lb.rampart.internal".into(),
        }
    }

    fn good_certificate() -> Certificate {
        Certificate {
            key_type: "ecdsa".into(),
            curve: Some("prime256v1".into()),
            rsa_bits: None,
            signature: "ecdsa-with-SHA256".into(),
            lifespan_days: 90,
            verified: Ok(()),
        }
    }

    #[test]
    fn a_compliant_endpoint_is_one_line_per_aspect() {
        let p = Profile::named("intermediate").unwrap();
        let scan = Scan {
            no_answer: Vec::new(),
            versions: vec![
                (Version::Tls10, false),
                (Version::Tls11, false),
                (Version::Tls12, true),
                (Version::Tls13, true),
            ],
            suites: vec![
                (Version::Tls12, "ECDHE-ECDSA-AES128-GCM-SHA256".into()),
                (Version::Tls13, "TLS_AES_128_GCM_SHA256".into()),
            ],
            groups: vec![
                (Version::Tls13, "X25519".into()),
                (Version::Tls12, "prime256v1".into()),
            ],
            certificate: Some(Ok(good_certificate())),
            ..Scan::default()
        };
        let checks = judge(&endpoint(), &p, &scan, true);
        let probes: Vec<(&str, Status)> = checks
            .iter()
            .map(|c| (c.probe.as_str(), c.status))
            .collect();
        assert_eq!(
            probes,
            [
                ("443/https protocols", Status::Pass),
                ("443/https suites TLSv1.2", Status::Pass),
                ("443/https suites TLSv1.3", Status::Pass),
                ("443/https groups", Status::Pass),
                ("443/https certificate", Status::Pass),
                ("443/https chain", Status::Pass),
            ]
        );
        assert_eq!(checks[3].observed, "X25519, prime256v1");
    }

    #[test]
    fn every_thing_outside_the_profile_is_its_own_line_naming_it() {
        let p = Profile::named("intermediate").unwrap();
        let mut cert = good_certificate();
        cert.signature = "ecdsa-with-SHA1".into();
        cert.lifespan_days = 825;
        cert.verified = Err("unable to get local issuer certificate".into());
        let scan = Scan {
            no_answer: Vec::new(),
            versions: vec![
                (Version::Tls10, false),
                (Version::Tls11, true),
                (Version::Tls12, true),
                (Version::Tls13, true),
            ],
            suites: vec![
                (Version::Tls12, "ECDHE-ECDSA-AES128-GCM-SHA256".into()),
                (Version::Tls12, "ECDHE-ECDSA-AES128-SHA".into()),
            ],
            groups: vec![
                (Version::Tls13, "X25519".into()),
                (Version::Tls13, "X448".into()),
                (Version::Tls12, "secp521r1".into()),
            ],
            certificate: Some(Ok(cert)),
            ..Scan::default()
        };
        let checks = judge(&endpoint(), &p, &scan, true);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.probe.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "443/https protocol TLSv1.1",
                "443/https suite TLSv1.2 ECDHE-ECDSA-AES128-SHA",
                "443/https group X448",
                "443/https group secp521r1",
                "443/https certificate signature",
                "443/https certificate lifespan",
                "443/https chain",
            ]
        );
        let x448 = checks
            .iter()
            .find(|c| c.probe == "443/https group X448")
            .unwrap();
        assert_eq!(x448.observed, "accepted (TLSv1.3)");
        assert!(x448
            .reason
            .as_deref()
            .unwrap()
            .contains("settings.tls.profile (HAProxy, lib/render/haproxy.nix)"));
    }

    #[test]
    fn a_waived_group_is_listed_and_silence_is_not_called_a_refusal() {
        let p = Profile::named("intermediate").unwrap();
        let etcd = Endpoint {
            service: "etcdPeer".into(),
            ..endpoint()
        };
        let scan = Scan {
            no_answer: vec![(Version::Tls12, "no answer in 3 attempts: timeout".into())],
            versions: vec![(Version::Tls12, false), (Version::Tls13, true)],
            suites: vec![(Version::Tls13, "TLS_AES_128_GCM_SHA256".into())],
            groups: vec![
                (Version::Tls13, "X25519".into()),
                (Version::Tls13, "secp521r1".into()),
            ],
            certificate: None,
            ..Scan::default()
        };
        let checks = judge(&etcd, &p, &scan, true);
        let row = |probe: &str| checks.iter().find(|c| c.probe == probe).unwrap();
        let waived = row("443/etcdPeer group secp521r1");
        assert_eq!(waived.status, Status::Info);
        assert!(waived
            .reason
            .as_deref()
            .unwrap()
            .starts_with("waived (lib/tls-profiles.json): etcd has no setting"));
        assert_eq!(row("443/etcdPeer groups").status, Status::Pass);
        let silent = row("443/etcdPeer protocol TLSv1.2");
        assert_eq!(
            (silent.status, silent.observed.as_str()),
            (Status::Fail, "no answer")
        );
        let labelled = etcd.label(silent.clone(), &p);
        assert_eq!(labelled.kind, None, "silence is no profile violation");
    }

    #[test]
    fn profile_groups_unanswered_are_silence_not_a_violation() {
        let p = Profile::named("intermediate").unwrap();
        let scan = |unanswered: Vec<(Version, String)>| Scan {
            versions: vec![(Version::Tls12, true), (Version::Tls13, true)],
            suites: vec![(Version::Tls13, "TLS_AES_128_GCM_SHA256".into())],
            groups_unanswered: unanswered,
            ..Scan::default()
        };
        let groups = |scan: &Scan| {
            let checks = judge(&endpoint(), &p, scan, true);
            let row = checks
                .into_iter()
                .find(|c| c.probe == "443/https groups" && c.status == Status::Fail)
                .unwrap();
            endpoint().label(row, &p)
        };
        // The daemon stopped after the protocol probes: its groups went unanswered.
        let silent = groups(&scan(vec![(Version::Tls13, "X25519".into())]));
        assert_eq!(
            (silent.status, silent.observed.as_str()),
            (Status::Fail, "no answer")
        );
        assert_eq!(silent.kind, None, "silence is no profile violation");
        // Every group of the profile refused with an answer: a violation.
        let refused = groups(&scan(vec![(Version::Tls13, "X448".into())]));
        assert_eq!(refused.observed, "none accepted");
        assert_eq!(refused.kind, Some(Kind::TlsProfile));
    }

    #[test]
    fn modern_fails_tls12_and_rsa_keys() {
        let p = Profile::named("modern").unwrap();
        let mut cert = good_certificate();
        cert.key_type = "rsa".into();
        cert.curve = None;
        cert.rsa_bits = Some(2048);
        cert.signature = "sha256WithRSAEncryption".into();
        let scan = Scan {
            no_answer: Vec::new(),
            versions: vec![(Version::Tls12, true), (Version::Tls13, true)],
            suites: vec![(Version::Tls13, "TLS_AES_128_GCM_SHA256".into())],
            groups: vec![(Version::Tls13, "X25519".into())],
            certificate: Some(Ok(cert)),
            ..Scan::default()
        };
        let failed: Vec<String> = judge(&endpoint(), &p, &scan, false)
            .into_iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.probe)
            .collect();
        assert_eq!(
            failed,
            [
                "443/https protocol TLSv1.2",
                "443/https certificate key",
                "443/https certificate signature"
            ]
        );
    }
}
