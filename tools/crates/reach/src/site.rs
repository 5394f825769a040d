//! The site as users get it: every file of a web manifest fetched through the load
//! balancer's public endpoint and compared with the SHA-256 recorded when the site was
//! built (the same manifest the web hosts check their copy against, [`crate::files`]).
//!
//! HAProxy spreads requests over the web hosts, so each file is fetched once per web host
//! (`rounds`): a copy that differs on one host shows in most runs. The hosts' own check
//! of their root is the one that never misses; this one proves what leaves the load
//! balancer. A file the site has but the manifest does not cannot be found from outside
//! (nothing lists a directory); the hosts' check finds it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use sha2::{Digest, Sha256};

use crate::files::{self, Manifest};
use crate::https::{Endpoint, Limits};
use crate::report::{Check, FileCounts};
use rampart_probe::http;
use rampart_probe::tls::{self, TlsSetup};

/// What to fetch: the manifest's files under `path` of the endpoint, `rounds` times each.
#[derive(Clone, Debug)]
pub struct Site {
    pub manifest: Manifest,
    /// The URL path the site is served under, with a leading and trailing `/`.
    pub path: String,
    pub rounds: usize,
}

/// Concurrent requests at most (a large site must not look like an attack).
const PARALLEL: usize = 16;

/// `%`-escapes what may not stand in a URL path as it is (a file name with a space).
fn url_path(file: &str) -> String {
    file.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One GET over a fresh TLS connection: the status and the body's SHA-256.
async fn fetch(
    setup: &TlsSetup,
    ep: &Endpoint,
    path: &str,
    limits: Limits,
) -> Result<(u16, String), String> {
    let host = &ep.names[0];
    let addr = SocketAddr::new(ep.address, ep.port);
    let exchange = async {
        let (mut stream, _) = tls::connect(setup, addr, host, limits.timeout).await?;
        http::get(&mut stream, host, path)
            .await
            .map_err(|e| format!("GET {path}: {e}"))
    };
    let response = tokio::time::timeout(limits.timeout, exchange)
        .await
        .map_err(|_| format!("no HTTP answer within {:?}", limits.timeout))??;
    let digest = Sha256::digest(&response.body);
    Ok((
        response.status,
        digest.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

/// Fetches every file of the site; one failing check per file that is missing (404) or
/// differs (another status, other bytes, no answer), then the `manifest` check with the
/// counts, its target the site's URL.
pub async fn fetched(setup: &TlsSetup, ep: &Endpoint, site: &Site, limits: Limits) -> Vec<Check> {
    let started = std::time::Instant::now();
    let target = format!("https://{}{}", ep.names[0], site.path);
    let requests: Vec<(&String, String)> = site
        .manifest
        .files
        .keys()
        .flat_map(|file| {
            let path = format!("{}{}", site.path, url_path(file));
            std::iter::repeat_n((file, path), site.rounds.max(1))
        })
        .collect();
    let mut answers: Vec<(&String, Answer)> = Vec::new();
    for chunk in requests.chunks(PARALLEL) {
        let results =
            super::join_all(chunk.iter().map(|(_, path)| fetch(setup, ep, path, limits))).await;
        answers.extend(chunk.iter().map(|(file, _)| *file).zip(results));
    }
    // Per file, the worst answer: a wrong one (changed) over a 404 (missing) over the
    // recorded bytes. A server error or no answer says nothing of the content (no web
    // host in rotation answers 503): the file's check fails, its counts stay 0.
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    let mut failures: Vec<Check> = Vec::new();
    for (file, answers) in by_file(answers) {
        let expected = &site.manifest.files[file];
        let unavailable = answers.iter().find_map(|a| match a {
            Ok((status, _)) if *status >= 500 => Some(format!("{status}")),
            Err(e) => Some(e.clone()),
            Ok(_) => None,
        });
        let wrong = answers.iter().find_map(|a| match a {
            Ok((200, sum)) if sum == expected => None,
            Ok((404, _)) => None,
            Ok((status, _)) if *status >= 500 => None,
            Ok((status, sum)) => Some(format!("{status}, sha256 {sum}")),
            Err(_) => None,
        });
        if let Some(reason) = unavailable {
            failures.push(
                Check::new("files", &target, file.clone())
                    .judged(false, "as recorded", "unavailable")
                    .with_reason(reason),
            );
        }
        let missing = answers.iter().any(|a| matches!(a, Ok((404, _))));
        match (wrong, missing) {
            (Some(reason), _) => {
                found.insert(file.clone(), String::new());
                reasons.insert(file.clone(), reason);
            }
            (None, true) => {
                reasons.insert(file.clone(), "404".into());
            }
            (None, false) => {
                found.insert(file.clone(), expected.clone());
            }
        }
    }
    let (counts, mut out) = files::compare(&target, &site.manifest.files, &found);
    for check in &mut out {
        if let Some(reason) = reasons.get(&check.probe) {
            check.reason = Some(format!(
                "{reason}; manifest sha256 {}",
                site.manifest.files[&check.probe]
            ));
        }
    }
    out.extend(failures);
    let counts = FileCounts {
        unexpected: 0,
        ..counts
    };
    out.push(files::summary(
        &target,
        site.manifest.files.len(),
        counts,
        started.elapsed().as_secs_f64(),
        format!(
            "{} requests through {} ({} per file)",
            site.manifest.files.len() * site.rounds.max(1),
            ep.target,
            site.rounds.max(1)
        ),
    ));
    out
}

type Answer = Result<(u16, String), String>;

/// The answers grouped by file, in the manifest's order.
fn by_file(answers: Vec<(&String, Answer)>) -> BTreeMap<&String, Vec<Answer>> {
    let mut out: BTreeMap<&String, Vec<Answer>> = BTreeMap::new();
    for (file, answer) in answers {
        out.entry(file).or_default().push(answer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_escaped_for_the_url() {
        assert_eq!(url_path("css/site.css"), "css/site.css");
        assert_eq!(url_path("a b/ü.html"), "a%20b/%C3%BC.html");
    }
}
