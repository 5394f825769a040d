//! The benchmark's comparison point: the same lab with TLS terminated at the load balancer
//! and *plain* HTTP to the backends, made from the rendered files by removing exactly the
//! backend TLS directives. It exists only to price the shipped design (re-encryption);
//! nothing deploys it.
//!
//! The edits are checked: each must apply at least once, so a renderer change that makes
//! one stale fails the benchmark loudly instead of measuring the shipped design twice.

use super::{LabError, Result};

/// `haproxy.cfg` with plain-HTTP backends: no `ssl`, `verify`, `ca-file`, `crt`, `sni`,
/// `check-sni`, `verifyhost` or ALPN options on `server` / `default-server` lines.
pub fn haproxy_plain_backends(config: &str) -> Result<String> {
    // Options that take one argument, and flags without one.
    const WITH_ARG: [&str; 7] = [
        "verify",
        "ca-file",
        "crt",
        "sni",
        "check-sni",
        "verifyhost",
        "alpn",
    ];
    const FLAGS: [&str; 2] = ["ssl", "check-ssl"];
    let mut edited = 0;
    let mut out = String::with_capacity(config.len());
    for line in config.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("server ") || trimmed.starts_with("default-server ") {
            let indent = &line[..line.len() - trimmed.len()];
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            let mut kept = Vec::with_capacity(words.len());
            let mut i = 0;
            while i < words.len() {
                let word = words[i];
                if WITH_ARG.contains(&word) || word == "check-alpn" {
                    i += 2;
                } else if FLAGS.contains(&word) {
                    i += 1;
                } else {
                    kept.push(word);
                    i += 1;
                }
            }
            if kept.len() != words.len() {
                edited += 1;
            }
            out.push_str(indent);
            out.push_str(&kept.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if edited == 0 {
        return Err(LabError::Invalid(
            "haproxy.cfg has no server line with backend TLS options (expected `ssl verify required …`); the plain-backend variant no longer matches the renderer".into(),
        ));
    }
    Ok(out)
}

/// nginx's `rampart.conf` with a plain-HTTP backend listener: `ssl` off the listen line of
/// the backend server, and no client-certificate requirement (HAProxy presents none
/// without TLS). The stub_status server is untouched.
pub fn nginx_plain_backend(config: &str) -> Result<String> {
    let mut out = String::with_capacity(config.len());
    let mut listen_edits = 0;
    let mut skip_if_block = false;
    for line in config.lines() {
        let trimmed = line.trim();
        if skip_if_block {
            if trimmed == "}" {
                skip_if_block = false;
            }
            continue;
        }
        if trimmed.starts_with("listen ") && trimmed.contains(" ssl") {
            out.push_str(&line.replace(" ssl", ""));
            out.push('\n');
            listen_edits += 1;
            continue;
        }
        if trimmed.starts_with("ssl_verify_client")
            || trimmed.starts_with("ssl_verify_depth")
            || trimmed.starts_with("ssl_client_certificate")
        {
            continue;
        }
        if trimmed.starts_with("if ($rampart_backend_client") {
            skip_if_block = !trimmed.ends_with('}');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if listen_edits == 0 {
        return Err(LabError::Invalid(
            "nginx/rampart.conf has no `listen … ssl` line; the plain-backend variant no longer matches the renderer".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_servers_lose_every_tls_option_and_keep_the_rest() {
        let cfg = "backend web\n  default-server check inter 2s fall 2 rise 2 ssl verify required ca-file /p/ca.pem crt /p/c.pem alpn http/1.1 check-alpn http/1.1\n  server web1 10.42.0.11:8443 sni str(web1.x) check-sni web1.x verifyhost web1.x\n  http-reuse safe\n";
        let plain = haproxy_plain_backends(cfg).unwrap();
        assert_eq!(
            plain,
            "backend web\n  default-server check inter 2s fall 2 rise 2\n  server web1 10.42.0.11:8443\n  http-reuse safe\n"
        );
        assert!(haproxy_plain_backends("backend web\n  server a 1.2.3.4:80\n").is_err());
    }

    #[test]
    fn nginx_backend_listener_goes_plain_without_client_certificates() {
        let conf = "server {\n  listen 10.42.0.11:8443 ssl default_server;\n  ssl_client_certificate /p/ca.pem;\n  ssl_verify_client on;\n  ssl_verify_depth 1;\n  if ($rampart_backend_client = 0) {\n    return 403;\n  }\n  location / { proxy_pass http://app; }\n}\nserver {\n  listen 127.0.0.1:8081;\n}\n";
        let plain = nginx_plain_backend(conf).unwrap();
        assert_eq!(
            plain,
            "server {\n  listen 10.42.0.11:8443 default_server;\n  location / { proxy_pass http://app; }\n}\nserver {\n  listen 127.0.0.1:8081;\n}\n"
        );
        assert!(nginx_plain_backend("server { listen 80; }\n").is_err());
    }
}
