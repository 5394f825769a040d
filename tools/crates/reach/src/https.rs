//! HTTPS checks of one endpoint: chain and name against the rampart CA, days to expiry,
//! and on the public entry point the HTTP→HTTPS redirect, HSTS and backend rotation.
//! Protocols, suites and groups are the `tls` group's (a TLS profile, crate::tls).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::report::Check;
use rampart_probe::http;
use rampart_probe::tls::{self, TlsSetup};

/// HSTS must keep browsers on HTTPS for at least a year.
pub const MIN_HSTS_MAX_AGE: u64 = 365 * 24 * 3600;

/// One TLS endpoint and what to ask of it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The report's target (a topology host name, or the URL's host).
    pub target: String,
    pub address: IpAddr,
    pub port: u16,
    /// Every name the certificate must be valid for (DNS names or addresses); the first
    /// is the SNI and `Host` of HTTP requests.
    pub names: Vec<String>,
    /// The request path for HSTS and rotation.
    pub path: String,
    /// Plain-HTTP port that must redirect to HTTPS (`None`: not checked).
    pub redirect_port: Option<u16>,
    /// Must the answer carry HSTS?
    pub hsts: bool,
    /// Backends that N requests must all reach, and N (`None`: not checked).
    pub rotation: Option<(Vec<String>, usize)>,
}

/// Limits of the checks.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub timeout: Duration,
    /// A certificate with fewer days left fails.
    pub min_days: i64,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Runs every check of the endpoint concurrently. An endpoint that accepts no
/// connection at all is one failing `connect` check, not the same error ten times.
pub async fn endpoint(setup: &TlsSetup, ep: &Endpoint, limits: Limits) -> Vec<Check> {
    let addr = SocketAddr::new(ep.address, ep.port);
    let reachable = rampart_probe::tcp::probe(addr, None, limits.timeout).await;
    if reachable.state != rampart_probe::tcp::PortState::Open {
        return vec![
            Check::new("https", &ep.target, format!("connect :{}", ep.port))
                .judged(false, "open", reachable.state.name())
                .with_reason(reachable.reason)
                .with_seconds(reachable.seconds),
        ];
    }
    let names = super::join_all(
        ep.names
            .iter()
            .map(|n| certificate(setup, ep, addr, n, limits)),
    );
    let redirect = async {
        match ep.redirect_port {
            Some(port) => vec![redirect(ep, port, limits).await],
            None => vec![],
        }
    };
    let hsts = async {
        if ep.hsts {
            vec![hsts(setup, ep, addr, limits).await]
        } else {
            vec![]
        }
    };
    let rotation = async {
        match &ep.rotation {
            Some((backends, n)) => vec![rotation(setup, ep, addr, backends, *n, limits).await],
            None => vec![],
        }
    };
    let (names, redirect, hsts, rotation) = tokio::join!(names, redirect, hsts, rotation);
    let mut out: Vec<Check> = names.into_iter().flatten().collect();
    out.extend(redirect);
    out.extend(hsts);
    out.extend(rotation);
    out
}

/// Chain and name for one name; the first name also reports days to expiry.
async fn certificate(
    setup: &TlsSetup,
    ep: &Endpoint,
    addr: SocketAddr,
    name: &str,
    limits: Limits,
) -> Vec<Check> {
    let probe = format!("certificate {name}");
    let check = Check::new("https", &ep.target, probe);
    let expected = "verified by the rampart CA";
    match tls::connect(setup, addr, name, limits.timeout).await {
        Err(e) => vec![check.judged(false, expected, "no handshake").with_reason(e)],
        Ok((_stream, hs)) => {
            let mut out = Vec::new();
            let verified = hs.verify_error.is_none();
            let mut c = check
                .judged(
                    verified,
                    expected,
                    if verified { "verified" } else { "rejected" },
                )
                .with_seconds(hs.seconds);
            if let Some(e) = hs.verify_error {
                c = c.with_reason(e);
            }
            out.push(c);
            if name == ep.names[0] {
                out.push(expiry(ep, hs.leaf.as_ref(), limits));
            }
            out
        }
    }
}

fn expiry(ep: &Endpoint, leaf: Option<&tls::Leaf>, limits: Limits) -> Check {
    let check = Check::new("https", &ep.target, "expiry");
    let expected = format!("≥ {} days left", limits.min_days);
    let Some(leaf) = leaf else {
        return check
            .judged(false, expected, "unknown")
            .with_reason("the certificate does not parse");
    };
    let days = (leaf.not_after - now()).div_euclid(86_400);
    let mut c = check.judged(
        days >= limits.min_days,
        expected,
        format!("{days} days left"),
    );
    c.not_after = Some(leaf.not_after);
    c.days_left = Some(days);
    c.with_reason(leaf.subject.clone())
}

async fn get_over_tls(
    setup: &TlsSetup,
    ep: &Endpoint,
    addr: SocketAddr,
    limits: Limits,
) -> Result<http::Response, String> {
    let host = &ep.names[0];
    let exchange = async {
        let (mut stream, _) = tls::connect(setup, addr, host, limits.timeout).await?;
        http::get(&mut stream, host, &ep.path)
            .await
            .map_err(|e| format!("GET {}: {e}", ep.path))
    };
    tokio::time::timeout(limits.timeout, exchange)
        .await
        .map_err(|_| format!("no HTTP answer within {:?}", limits.timeout))?
}

async fn redirect(ep: &Endpoint, port: u16, limits: Limits) -> Check {
    let check = Check::new("https", &ep.target, format!("redirect :{port}"));
    let host = &ep.names[0];
    let expected = format!("301/308 → https://{host}…");
    let addr = SocketAddr::new(ep.address, port);
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        http::get(&mut tcp, host, &ep.path)
            .await
            .map_err(|e| format!("GET {}: {e}", ep.path))
    };
    let response = match tokio::time::timeout(limits.timeout, exchange).await {
        Err(_) => Err(format!("no HTTP answer within {:?}", limits.timeout)),
        Ok(r) => r,
    };
    match response {
        Err(e) => check.judged(false, expected, "no answer").with_reason(e),
        Ok(r) => {
            let location = r.header("location").unwrap_or_default().to_string();
            let target_ok = location.starts_with(&format!("https://{host}"));
            let ok = matches!(r.status, 301 | 308) && target_ok;
            check.judged(ok, expected, format!("{} → {location}", r.status))
        }
    }
}

/// The `max-age` of a `Strict-Transport-Security` value.
pub fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

async fn hsts(setup: &TlsSetup, ep: &Endpoint, addr: SocketAddr, limits: Limits) -> Check {
    let check = Check::new("https", &ep.target, "hsts");
    let expected = format!("max-age ≥ {MIN_HSTS_MAX_AGE}");
    match get_over_tls(setup, ep, addr, limits).await {
        Err(e) => check.judged(false, expected, "no answer").with_reason(e),
        Ok(r) => match r.header("strict-transport-security") {
            None => check.judged(false, expected, "absent"),
            Some(v) => {
                let ok = hsts_max_age(v).is_some_and(|age| age >= MIN_HSTS_MAX_AGE);
                check.judged(ok, expected, v.to_string())
            }
        },
    }
}

/// Which of `backends` a response body names (as a whole word).
pub fn named_backend<'b>(body: &str, backends: &'b [String]) -> Option<&'b String> {
    let words: BTreeSet<&str> = body
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    backends.iter().find(|b| words.contains(b.as_str()))
}

async fn rotation(
    setup: &TlsSetup,
    ep: &Endpoint,
    addr: SocketAddr,
    backends: &[String],
    requests: usize,
    limits: Limits,
) -> Check {
    let check = Check::new("https", &ep.target, format!("rotation ×{requests}"));
    let expected = if backends.is_empty() {
        "some backend".to_string()
    } else {
        backends.join(", ")
    };
    let answers =
        super::join_all((0..requests).map(|_| get_over_tls(setup, ep, addr, limits))).await;
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for answer in answers {
        match answer {
            Ok(r) if r.status == 200 => match named_backend(&r.text(), backends) {
                Some(b) => {
                    seen.insert(b.clone());
                }
                None => problems.push(format!("an answer named no backend: {:?}", r.text())),
            },
            Ok(r) => problems.push(format!("status {}", r.status)),
            Err(e) => problems.push(e),
        }
    }
    let all_seen = backends.iter().all(|b| seen.contains(b));
    let observed = if seen.is_empty() {
        "none".to_string()
    } else {
        seen.into_iter().collect::<Vec<_>>().join(", ")
    };
    let c = check.judged(all_seen && problems.is_empty(), expected, observed);
    match problems.first() {
        Some(p) => c.with_reason(format!("{} failed request(s), first: {p}", problems.len())),
        None => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_max_age_is_read_from_any_position() {
        assert_eq!(
            hsts_max_age("max-age=31536000; includeSubDomains"),
            Some(31_536_000)
        );
        assert_eq!(
            hsts_max_age("includeSubDomains; Max-Age=\"63072000\""),
            Some(63_072_000)
        );
        assert_eq!(hsts_max_age("includeSubDomains"), None);
        assert_eq!(hsts_max_age("max-age=soon"), None);
    }

    #[test]
    fn a_backend_counts_only_as_a_whole_word() {
        let backends = vec!["web1".to_string(), "web2".to_string()];
        assert_eq!(
            named_backend("served by web2\n", &backends),
            Some(&backends[1])
        );
        assert_eq!(
            named_backend("{\"host\":\"web1\"}", &backends),
            Some(&backends[0])
        );
        assert_eq!(named_backend("web10", &backends), None);
    }
}
