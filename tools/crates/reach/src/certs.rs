//! The certificate files of the vantage host (docs/contracts.md, "Certificates"): each
//! exists, parses and is not expired; their notAfter goes into the textfile.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::report::Check;
use rampart_probe::tls::{leaf_info, read_certs};
use rampart_topology::certificates::Purpose;
use rampart_topology::Host;

/// The certificate stems a host holds, by the roles that need them (ca first).
pub fn stems(host: &Host) -> Vec<&'static str> {
    std::iter::once("ca")
        .chain(
            Purpose::ALL
                .into_iter()
                .filter(|p| p.on_host(host))
                .map(Purpose::stem),
        )
        .collect()
}

/// One check per certificate file of `host` in `pki_dir`.
pub fn check(host: &Host, pki_dir: &Path) -> Vec<Check> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    stems(host)
        .into_iter()
        .map(|stem| {
            let started = std::time::Instant::now();
            let path = pki_dir.join(format!("{stem}.pem"));
            let mut c = Check::new("certificates", &host.name, stem);
            c.path = Some(path.display().to_string());
            c.purpose = Some(stem.to_string());
            let parsed = read_certs(&path)
                .map_err(|e| e.to_string())
                .and_then(|certs| leaf_info(&certs[0]));
            let c = match parsed {
                Err(e) => c.judged(false, "valid", "unusable").with_reason(e),
                Ok(leaf) => {
                    let days = (leaf.not_after - now).div_euclid(86_400);
                    c.not_after = Some(leaf.not_after);
                    c.days_left = Some(days);
                    let observed = if leaf.not_after > now {
                        format!("valid, {days} days left")
                    } else {
                        "expired".to_string()
                    };
                    c.judged(leaf.not_after > now, "valid", observed)
                }
            };
            c.with_seconds(started.elapsed().as_secs_f64())
        })
        .collect()
}
