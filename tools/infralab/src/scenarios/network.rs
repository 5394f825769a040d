//! Scenarios about traffic: HTTPS, the firewall matrix, LB→web TLS, replication.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rampart_lab::daemons::MariadbPaths;
use rampart_lab::fabric;
use rampart_topology::Role;

use super::{Ctx, Proof};
use crate::bringup::issue;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// HTTPS from `outside` reaches every web host in turn; HTTP redirects; HSTS; TLS 1.0 and
/// 1.1 are refused by the server (the client offers them), TLS 1.2 accepted.
pub fn https(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let web: BTreeSet<String> = ctx.web_hosts().into_iter().map(|h| h.name).collect();
    let url = ctx.public_url("/");
    let mut seen = BTreeSet::new();
    let rounds = 4 * web.len();
    for _ in 0..rounds {
        let out = ctx.curl("outside", &["--fail", &url])?;
        ensure!(
            out.status.success(),
            "GET {url} from outside failed: {}",
            text(&out.stderr)
        );
        let body = text(&out.stdout);
        match web.iter().find(|h| body.contains(h.as_str())) {
            Some(host) => seen.insert(host.clone()),
            None => bail!(
                "GET {url} answered {body:?}, which names no web host (expected one of {web:?})"
            ),
        };
    }
    ensure!(
        seen == web,
        "{rounds} requests reached {seen:?}, not every web host {web:?}"
    );
    proof.note(format!(
        "{rounds} × GET {url} (CA-verified) served by {}",
        seen.into_iter().collect::<Vec<_>>().join(", ")
    ));

    let http_url = format!("http://{}/some/path?q=1", ctx.public_name);
    let out = ctx.curl(
        "outside",
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &http_url,
        ],
    )?;
    let answer = text(&out.stdout);
    let expected = format!("301 https://{}/some/path?q=1", ctx.public_name);
    ensure!(
        answer == expected,
        "GET {http_url} answered {answer:?} (expected {expected:?})"
    );
    proof.note(format!("GET {http_url} → {answer}"));

    let out = ctx.curl("outside", &["-o", "/dev/null", "-D", "-", &url])?;
    let headers = text(&out.stdout).to_ascii_lowercase();
    let hsts = headers
        .lines()
        .find_map(|l| l.strip_prefix("strict-transport-security:"))
        .map(str::trim)
        .with_context(|| format!("GET {url} has no Strict-Transport-Security header"))?;
    let max_age: u64 = hsts
        .split(';')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("Strict-Transport-Security {hsts:?} has no max-age"))?;
    ensure!(
        max_age >= 31_536_000,
        "HSTS max-age is {max_age} (expected at least one year, 31536000)"
    );
    proof.note(format!("Strict-Transport-Security: {hsts}"));

    // SECLEVEL=0 lets the client offer the old versions, so a refusal is the server's.
    let target = format!("{}:{}", ctx.lb.address, ctx.port("https")?);
    for (flag, want) in [
        ("-tls1", false),
        ("-tls1_1", false),
        ("-tls1_2", true),
        ("-tls1_3", true),
    ] {
        let out = ctx.exec(
            "outside",
            "openssl",
            &[
                "s_client",
                "-connect",
                &target,
                "-servername",
                &ctx.public_name,
                flag,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ],
        )?;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        let accepted =
            out.status.success() && all.contains("Cipher is") && !all.contains("Cipher is (NONE)");
        ensure!(
            accepted == want,
            "openssl s_client {flag} to {target}: {} (expected {})",
            if accepted { "accepted" } else { "refused" },
            if want { "accepted" } else { "refused" }
        );
        // "no protocols available" would mean the client never offered the version.
        ensure!(!all.contains("no protocols available"), "openssl s_client {flag}: the client refused to offer it, so the server was not tested:\n{all}");
        proof.note(format!(
            "openssl s_client {flag}: {}",
            if accepted {
                "accepted"
            } else {
                "refused by the server"
            }
        ));
    }
    proof.summary = format!(
        "{} backends alternate, 301, HSTS {max_age} s, TLS < 1.2 refused",
        web.len()
    );
    Ok(())
}

/// `reach check --only ports` from outside, lb and every web host: every allowed port
/// open, every other one dropped, as the topology says.
pub fn firewall(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let mut vantages = vec!["outside".to_string()];
    vantages.extend(ctx.lab.topology.hosts.iter().map(|h| h.name.clone()));
    if ctx.lab.nodes.iter().any(|n| n.name == "admin") {
        vantages.push("admin".into());
    }
    let mut failures = Vec::new();
    let (mut open, mut closed) = (0, 0);
    // One reach per vantage, all at once: each waits about one probe timeout for the
    // dropped ports.
    let outputs: Vec<Result<std::process::Output>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = vantages
            .iter()
            .map(|vantage| {
                let ctx = &*ctx;
                scope.spawn(move || {
                    let args =
                        crate::reach::check_args(&ctx.lab, &ctx.pki, vantage, &["ports"], true);
                    crate::reach::run_reach(&ctx.lab, vantage, &args)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (vantage, out) in vantages.iter().zip(outputs) {
        let out = out?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "reach --json from {vantage} printed no JSON: {}",
                text(&out.stderr)
            )
        })?;
        let checks = doc["checks"].as_array().cloned().unwrap_or_default();
        for c in &checks {
            match (c["status"].as_str(), c["expected"].as_str()) {
                (Some("pass"), Some("open")) => open += 1,
                (Some("pass"), _) => closed += 1,
                (Some("fail"), _) => failures.push(format!(
                    "from {vantage}: {} {} is {} (expected {})",
                    c["target"].as_str().unwrap_or("?"),
                    c["probe"].as_str().unwrap_or("?"),
                    c["observed"].as_str().unwrap_or("?"),
                    c["expected"].as_str().unwrap_or("?")
                )),
                _ => {}
            }
        }
        proof.note(format!(
            "reach check --from {vantage} --only ports: {} probes, {} failed",
            checks.len(),
            doc["summary"]["failed"]
        ));
    }
    // sshd listens on the topology address only (lib/render/sshd.nix, as on NixOS): on a
    // host's other addresses, loopback included, the port is closed, not just filtered.
    if let Some(ssh) = ctx.lab.topology.services.get("ssh").map(|s| s.port) {
        for host in &ctx.lab.topology.hosts {
            let args = [
                "ports".to_string(),
                "127.0.0.1".into(),
                format!("{ssh}=closed"),
            ];
            let out = crate::reach::run_reach(&ctx.lab, &host.name, &args)?;
            if out.status.success() {
                closed += 1;
            } else {
                failures.push(format!(
                    "on {}: sshd answers on 127.0.0.1:{ssh} (expected it on {}:{ssh} only): {}",
                    host.name,
                    host.address,
                    text(&out.stdout)
                ));
            }
        }
        proof.note(format!(
            "sshd: port {ssh} closed on 127.0.0.1 of every host (it listens on the topology address only)"
        ));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    ensure!(
        open > 0 && closed > 0,
        "reach probed {open} allowed and {closed} refused ports (expected both kinds)"
    );
    proof.summary = format!(
        "{open} allowed ports open, {closed} others dropped, from {} vantages",
        vantages.len()
    );
    Ok(())
}

/// A packet capture on the lb–web1 link shows TLS and no plaintext HTTP; a web1
/// certificate from another CA makes HAProxy mark web1 DOWN, the real one brings it back.
pub fn backend_tls(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    const REQUESTS: usize = 20;
    let web1 = ctx.web_hosts()[0].clone();
    let port =
        fabric::bridge_port(&ctx.lab.nodes, &web1.name).context("web1 has no bridge port")?;
    let backend_port = ctx.port("backendHttps")?;
    let pcap = ctx.lab.state.root().join("backend-tls.pcap");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ctx.lab.names.bridge_namespace(),
            "tcpdump",
            "-n",
            "--immediate-mode",
            "-U",
            "-s",
            "0",
            "-i",
            &port,
            "-w",
        ])
        .arg(&pcap)
        .args(["tcp", "port", &backend_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start tcpdump")?;
    // tcpdump says "listening on …" once the capture runs: wait for that, not for time.
    // --immediate-mode: packets reach the file at once, not when a ring block fills.
    let mut stderr = BufReader::new(tcpdump.stderr.take().context("tcpdump has no stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    let captured = (|| -> Result<usize> {
        ensure!(
            line.contains("listening on"),
            "tcpdump did not start: {line}"
        );
        let url = ctx.public_url("/");
        for _ in 0..REQUESTS {
            let out = ctx.curl("outside", &["--fail", "-o", "/dev/null", &url])?;
            ensure!(
                out.status.success(),
                "GET {url} failed: {}",
                text(&out.stderr)
            );
        }
        Ok(REQUESTS)
    })();
    let _ = rampart_lab::process::signal(tcpdump.id(), rampart_lab::process::Signal::SIGINT);
    let _ = tcpdump.wait();
    let requests = captured?;
    let bytes = std::fs::read(&pcap).with_context(|| format!("cannot read {}", pcap.display()))?;
    let _ = std::fs::remove_file(&pcap);
    ensure!(
        bytes.len() > 1000,
        "the capture on {port} (web1's link) holds only {} bytes; no LB→web traffic seen",
        bytes.len()
    );
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for plain in [&b"HTTP/1."[..], b"GET /", b"Host: "] {
        ensure!(
            !contains(plain),
            "plaintext {:?} on the lb–web1 link (tcp port {backend_port})",
            String::from_utf8_lossy(plain)
        );
    }
    // TLS application data records: content type 23, version 3.3.
    ensure!(
        contains(&[0x17, 0x03, 0x03]),
        "no TLS application data on the lb–web1 link"
    );
    proof.note(format!(
        "tcpdump on {port} (web1's link), tcp port {backend_port}, {requests} requests from outside: {} bytes of TLS records, no \"HTTP/1.\", \"GET /\" or \"Host: \"",
        bytes.len()
    ));

    // Another CA, same names: only the trust anchor differs.
    let state = ctx.lab.state.root().to_path_buf();
    let (rogue_ca, rogue_out) = (state.join("rogue-ca"), state.join("rogue-certs"));
    issue(&ctx.lab, &rogue_ca, &rogue_out, &[])?;
    ctx.replace_backend_certificate(&web1.name, &rogue_out.join(&web1.name))?;
    let down = ctx.wait_server(&web1.name, "DOWN", Duration::from_secs(20));
    // Whatever happened, web1 gets its real certificate back.
    let restored = ctx.restore_backend_certificate(&web1.name);
    let (state_down, took_down) = down?;
    restored?;
    proof.note(format!(
        "web1 with a certificate of another CA: DOWN ({}) after {:.1} s",
        state_down.check,
        took_down.as_secs_f64()
    ));
    let out = ctx.curl(
        "outside",
        &["--fail", "-o", "/dev/null", &ctx.public_url("/")],
    )?;
    ensure!(
        out.status.success(),
        "the site failed while web1 was DOWN: {}",
        text(&out.stderr)
    );
    let (state_up, took_up) = ctx.wait_server(&web1.name, "UP", Duration::from_secs(20))?;
    proof.note(format!(
        "its own certificate back: UP ({}) after {:.1} s",
        state_up.check,
        took_up.as_secs_f64()
    ));
    backend_client_certificates(ctx, &web1, proof)?;
    proof.summary = format!(
        "TLS only on lb–web, client certificate required; wrong CA → DOWN ({}) in {:.1} s",
        state_down.check,
        took_down.as_secs_f64()
    );
    Ok(())
}

/// From the load balancer to a backend's nginx: no client certificate is refused, another
/// rampart certificate (the web host's own replication client) gets 403, the load
/// balancer's `backend-client` certificate gets 200.
fn backend_client_certificates(
    ctx: &Ctx,
    web: &rampart_topology::Host,
    proof: &mut Proof,
) -> Result<()> {
    let fqdn = ctx.lab.topology.fqdn(web);
    let port = ctx.port("backendHttps")?;
    let url = format!("https://{fqdn}:{port}/");
    let resolve = format!("{fqdn}:{port}:{}", web.address);
    let lb_pki = ctx.lab.host_dirs(&ctx.lb.name).pki;
    let web_pki = ctx.lab.host_dirs(&web.name).pki;
    let ca = lb_pki.join("ca.pem").display().to_string();
    let status = |identity: Option<(&std::path::Path, &str)>| -> Result<String> {
        let mut args: Vec<String> = [
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([ca.clone(), "--resolve".into(), resolve.clone()]);
        if let Some((dir, stem)) = identity {
            args.extend([
                "--cert".into(),
                dir.join(format!("{stem}.pem")).display().to_string(),
                "--key".into(),
                dir.join(format!("{stem}.key")).display().to_string(),
            ]);
        }
        args.push(url.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ctx.exec(&ctx.lb.name, "curl", &args)?;
        Ok(text(&out.stdout))
    };
    let none = status(None)?;
    ensure!(
        none != "200",
        "{url} answered 200 without a client certificate"
    );
    proof.note(format!(
        "{url} without a client certificate: {none} (refused)"
    ));
    if web_pki.join("replication-client.pem").is_file() {
        let other = status(Some((&web_pki, "replication-client")))?;
        ensure!(
            other == "403",
            "{url} with {}'s replication-client certificate answered {other} (expected 403)",
            web.name
        );
        proof.note(format!(
            "… with {}'s replication-client certificate: 403",
            web.name
        ));
    }
    let right = status(Some((&lb_pki, "backend-client")))?;
    ensure!(
        right == "200",
        "{url} with the load balancer's backend-client certificate answered {right} (expected 200)"
    );
    proof.note("… with the load balancer's backend-client certificate: 200");
    Ok(())
}

/// A visit written through web1's application shows up in web2's database; web2's
/// replica connection runs over verified TLS; the replication account cannot log in
/// without TLS (but can with it).
pub fn replication(ctx: &mut Ctx, proof: &mut Proof) -> Result<()> {
    let t = &ctx.lab.topology;
    let primary = t
        .hosts_with_role(Role::DatabasePrimary)
        .next()
        .cloned()
        .context("no databasePrimary host")?;
    let replica = t
        .hosts_with_role(Role::DatabaseReplica)
        .next()
        .cloned()
        .context("no databaseReplica host")?;
    ensure!(
        primary.has_role(Role::Web),
        "{} has no application to write through (expected role web)",
        primary.name
    );

    // Straight to web1's nginx from the load balancer, with HAProxy's client certificate:
    // the write must go through web1's application, whatever the balancing.
    let lb_pki = ctx.lab.host_dirs(&ctx.lb.name).pki;
    let fqdn = t.fqdn(&primary);
    let backend = ctx.port("backendHttps")?;
    let url = format!("https://{fqdn}:{backend}/visit");
    let resolve = format!("{fqdn}:{backend}:{}", primary.address);
    let out = ctx.exec(
        &ctx.lb.name,
        "curl",
        &[
            "-sS",
            "--fail",
            "--max-time",
            "5",
            "-X",
            "POST",
            "--cacert",
            &lb_pki.join("ca.pem").display().to_string(),
            "--cert",
            &lb_pki.join("backend-client.pem").display().to_string(),
            "--key",
            &lb_pki.join("backend-client.key").display().to_string(),
            "--resolve",
            &resolve,
            &url,
        ],
    )?;
    ensure!(
        out.status.success(),
        "POST {url} from lb failed: {} {}",
        text(&out.stderr),
        text(&out.stdout)
    );
    let visit: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("POST {url} answered no JSON: {}", text(&out.stdout)))?;
    let seq = visit["seq"]
        .as_u64()
        .with_context(|| format!("POST {url} answered no visit number: {visit}"))?;
    proof.note(format!(
        "POST {url} (through web1's nginx and application) → visit {seq}"
    ));

    let replica_db = MariadbPaths::new(&ctx.lab.host_dirs(&replica.name));
    let query = format!("SELECT served_by FROM rampart.visits WHERE seq = {seq}");
    let start = Instant::now();
    let served_by = loop {
        let out = replica_db
            .client(&ctx.lab.namespace(&replica.name))
            .args(["-N", "-e", &query])
            .output()?;
        let row = text(&out.stdout);
        if !row.is_empty() {
            break row;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(10),
            "visit {seq} is not in {}'s database after 10 s: {}",
            replica.name,
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(
        served_by == primary.name,
        "visit {seq} on {} says served_by {served_by:?} (expected {})",
        replica.name,
        primary.name
    );
    proof.note(format!(
        "{}'s own database has visit {seq} (served_by {served_by}) after {:.2} s",
        replica.name,
        start.elapsed().as_secs_f64()
    ));

    let out = replica_db
        .client(&ctx.lab.namespace(&replica.name))
        .args(["-e", "SHOW SLAVE STATUS\\G"])
        .output()?;
    let status = text(&out.stdout);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    for (name, want) in [
        ("Slave_IO_Running", "Yes"),
        ("Slave_SQL_Running", "Yes"),
        ("Master_SSL_Allowed", "Yes"),
        ("Master_SSL_Verify_Server_Cert", "Yes"),
    ] {
        ensure!(
            field(name) == want,
            "{} SHOW SLAVE STATUS: {name} is {:?} (expected {want})",
            replica.name,
            field(name)
        );
    }
    proof.note(format!(
        "{}: IO and SQL threads running, Master_SSL_Allowed Yes, server certificate verified",
        replica.name
    ));

    // The replication account from the replica host, without and with TLS.
    let secrets = rampart_lab::secrets::read(&ctx.lab.host_dirs(&replica.name))?;
    let password = secrets["replication-password"].clone();
    let pki = ctx.lab.host_dirs(&replica.name).pki;
    let login = |tls: bool| -> Result<std::process::Output> {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &ctx.lab.namespace(&replica.name),
            "mariadb",
            "--no-defaults",
            "-h",
        ])
        .arg(primary.address.to_string())
        .args(["-u", "rampart_repl", "-N", "-e", "SELECT 1"])
        // The password goes through the environment, not the command line (ps).
        .env("MYSQL_PWD", password.trim());
        if tls {
            cmd.arg(format!("--ssl-ca={}", pki.join("ca.pem").display()))
                .arg(format!(
                    "--ssl-cert={}",
                    pki.join("replication-client.pem").display()
                ))
                .arg(format!(
                    "--ssl-key={}",
                    pki.join("replication-client.key").display()
                ))
                .arg("--ssl-verify-server-cert");
        } else {
            cmd.arg("--skip-ssl");
        }
        Ok(cmd.output()?)
    };
    let plain = login(false)?;
    ensure!(
        !plain.status.success(),
        "rampart_repl logged in to {} without TLS",
        primary.name
    );
    proof.note(format!(
        "rampart_repl without TLS: refused ({})",
        text(&plain.stderr).lines().last().unwrap_or("")
    ));
    let tls = login(true)?;
    ensure!(
        tls.status.success(),
        "rampart_repl with TLS and {}'s client certificate was refused: {}",
        replica.name,
        text(&tls.stderr)
    );
    proof.note("rampart_repl with TLS and the replication client certificate: accepted");
    proof.summary = format!(
        "visit {seq} replicated in {:.2} s over verified TLS; plain login refused",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
