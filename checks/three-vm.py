# checks/three-vm.py: the test script of checks/three-vm.nix (nixpkgs' NixOS test driver).
#
# `params` (set by three-vm.nix just above this file) holds every name, address and port,
# taken from hosts/topology.json and the nodes' configurations. `machines`, `start_all`
# and `subtest` are the driver's. Each step states its expectation first; every allowed
# path has a refused twin, with a short connect timeout.
import json
import re
import secrets
import subprocess
import tempfile

by_name = {machine.name: machine for machine in machines}
roles = {role: by_name[name] for role, name in params["roles"].items()}
lb, monitoring, primary, replica, sink = (roles[r] for r in ["lb", "monitoring", "primary", "replica", "sink"])
servers = {name: by_name[name] for name in params["servers"]}
clients = {vantage: by_name[name] for vantage, name in params["clients"].items()}
client = clients["outside"]
ports = params["ports"]
address = params["addresses"]
public = params["publicName"]

https_url = f"https://{public}"
curl_tls = "curl -sf --max-time 5 --cacert /etc/rampart/ca.pem"
prom_api = f"http://{address[monitoring.name]}:{ports['prometheus']}/api/v1"


def reach(vantage, *args):
    """`reach check` from a vantage (a topology host, or `outside`/`admin`)."""
    return f"reach check --topology /etc/rampart/topology.json --from {vantage} --timeout 2s " + " ".join(args)


def firing(alert):
    """A shell test: is `alert` firing in Prometheus?"""
    query = f'.data.alerts | map(select(.labels.alertname == "{alert}" and .state == "firing")) | length > 0'
    return f"curl -sf {prom_api}/alerts | jq -e '{query}'"


def delivered(alert):
    """A shell test: has a notification about `alert` reached the webhook sink?"""
    return f"grep -q '\"alertname\":\"{alert}\"' {params['sinkFile']}"


start_all()
for machine in machines:
    machine.wait_for_unit("multi-user.target")

with subtest("certificates and secrets"):
    # The CA and every certificate the topology needs, made by the packaged certtool in this
    # test's temporary directory: keys reach the machines as files, never the Nix store.
    work = tempfile.mkdtemp()
    subprocess.run([params["certtool"], "init-ca", "--topology", params["topology"], "--out", f"{work}/ca"], check=True)
    subprocess.run(
        [params["certtool"], "issue", "--topology", params["topology"], "--ca", f"{work}/ca", "--out", f"{work}/issued"],
        check=True,
    )
    pki, secrets_dir = params["pkiDir"], params["secretsDir"]
    # Each server gets exactly the secret files of its list (lib/secrets.nix), one value per
    # name across servers, as the README's table tells an operator.
    passwords = {name: secrets.token_hex(16) for names in params["secrets"].values() for name in names}
    for name, machine in servers.items():
        machine.copy_from_host(f"{work}/issued/{name}", pki)
        machine.copy_from_host(f"{work}/issued/ca.pem", f"{pki}/ca.pem")
        machine.succeed(f"chmod 0700 {pki}", f"install -d -m 0700 {secrets_dir}")
        for secret in params["secrets"][name]:
            machine.succeed(f"install -m 0600 /dev/null {secrets_dir}/{secret}", f"printf %s {passwords[secret]} > {secrets_dir}/{secret}")
    for machine in clients.values():
        machine.copy_from_host(f"{work}/issued/ca.pem", "/etc/rampart/ca.pem")

with subtest("services start with their keys"):
    # They failed at boot for want of the files above. etcd first, on every server at once
    # (a member reports ready only when a quorum has formed), then the rest. The primary's
    # accounts must exist before the replica connects: database hosts first, the primary
    # first of all.
    for machine in servers.values():
        machine.succeed("systemctl reset-failed", "systemctl restart --no-block etcd.service")
    for machine in servers.values():
        machine.wait_for_unit("etcd.service")
    order = sorted(servers, key=lambda n: (n != primary.name, n != replica.name))
    for name in order:
        units = " ".join(f"{unit}.service" for unit in params["units"][name])
        servers[name].succeed("systemctl reset-failed", f"systemctl restart {units}")
    for name in params["webs"]:
        servers[name].wait_for_open_port(ports["backendHttps"], address[name])
    lb.wait_for_open_port(ports["https"], address[lb.name])

with subtest("firewall"):
    # From every vantage, each port of the policy is open to it or closed/filtered, exactly
    # as hosts/topology.json declares (reach probes the whole matrix).
    for vantage, machine in list(clients.items()) + list(servers.items()):
        machine.succeed(reach(vantage, "--only ports"))
    # The internet client reaches HTTPS on the load balancer...
    client.succeed(f"{curl_tls} --connect-timeout 2 -o /dev/null {https_url}/")
    # ...but not a backend's listener, the database or SSH.
    for name in params["webs"]:
        client.fail(f"curl -sk --connect-timeout 2 -o /dev/null https://{address[name]}:{ports['backendHttps']}/")
        client.succeed(f"reach ports {address[name]} {ports['mysql']}=blocked {ports['ssh']}=blocked --timeout 2s")
    # Between hosts: MySQL is open from the replica to the primary, refused from the load balancer.
    replica.succeed(f"reach ports {address[primary.name]} {ports['mysql']}=open --timeout 2s")
    lb.succeed(f"reach ports {address[primary.name]} {ports['mysql']}=blocked --timeout 2s")
    # sshd listens on each host's topology address only: its port is closed on loopback.
    for name, machine in servers.items():
        machine.succeed(f"reach ports 127.0.0.1 {ports['ssh']}=closed --timeout 2s")
    if "admin" in clients:
        # SSH is for administrators only.
        clients["admin"].succeed(f"reach ports {address[lb.name]} {ports['ssh']}=open --timeout 2s")
        client.succeed(f"reach ports {address[lb.name]} {ports['ssh']}=blocked --timeout 2s")

with subtest("load-balancer"):
    # HTTPS through the load balancer is answered by every web host in turn.
    served = set()
    for _ in range(4 * len(params["webs"])):
        answer = json.loads(client.succeed(f"{curl_tls} '{https_url}/?format=json'"))
        served.add(answer["host"])
    assert served == set(params["webs"]), f"expected answers from {params['webs']}, got {sorted(served)}"
    # Plain HTTP only redirects to HTTPS.
    headers = client.succeed(f"curl -s --max-time 5 -o /dev/null -D - http://{public}/")
    assert re.search(r"^HTTP/1\.1 30[18]", headers, re.M), f"expected a 301/308 redirect, got:\n{headers}"
    assert re.search(rf"^location: https://{re.escape(public)}", headers, re.M | re.I), f"expected a redirect to https, got:\n{headers}"
    # HSTS for at least a year.
    headers = client.succeed(f"{curl_tls} -o /dev/null -D - {https_url}/")
    hsts = re.search(r"^strict-transport-security:\s*max-age=(\d+)", headers, re.M | re.I)
    assert hsts and int(hsts.group(1)) >= 31536000, f"expected HSTS max-age >= 31536000, got:\n{headers}"
    # And the whole verdict from the client: chain to the rampart CA only, SAN, TLS 1.2/1.3
    # accepted, TLS 1.0/1.1 refused, redirect, HSTS, rotation over every web host.
    client.succeed(reach("outside", "--only https"))

with subtest("web"):
    # A backend answers the load balancer, which presents its client certificate...
    for name in params["webs"]:
        fqdn = params["fqdns"][name]
        backend = f"https://{fqdn}:{ports['backendHttps']}/healthz"
        pinned = f"--resolve {fqdn}:{ports['backendHttps']}:{address[name]} --cacert {pki}/ca.pem"
        lb.succeed(f"curl -sf --max-time 5 {pinned} --cert {pki}/backend-client.pem --key {pki}/backend-client.key {backend}")
        # ...and refuses it without one (mutual TLS), from the one address the firewall admits.
        lb.fail(f"curl -sf --max-time 5 --connect-timeout 2 {pinned} {backend}")
    # HAProxy sees every backend UP with a passing check.
    lb.succeed(reach(lb.name, "--only haproxy"))

with subtest("replication"):
    # A write through the application on the primary's host appears on the replica.
    seq = 4242
    primary.succeed(f"curl -sf --max-time 5 -X POST 'http://127.0.0.1:{ports['app']}/visit?seq={seq}'")
    replica.wait_until_succeeds(
        f"curl -sf --max-time 5 http://127.0.0.1:{ports['app']}/visits/{seq} | jq -e '.source == \"replica\"'",
        timeout=60,
    )
    # The replica's connection runs, over TLS with the primary's certificate verified.
    status = replica.succeed("mariadb --batch -e 'SHOW SLAVE STATUS\\G'")
    for field in ["Slave_IO_Running: Yes", "Slave_SQL_Running: Yes", "Master_SSL_Allowed: Yes", "Master_SSL_Verify_Server_Cert: Yes"]:
        assert field in status, f"expected {field!r} in SHOW SLAVE STATUS, got:\n{status}"
    # The replication account connects over TLS with the replica's client certificate...
    account = (
        f"mariadb --connect-timeout=2 --host={address[primary.name]} --port={ports['mysql']}"
        f" --user={params['replicationUser']} --password={passwords['replication-password']}"
    )
    tls = f"--ssl --ssl-ca={pki}/ca.pem --ssl-cert={pki}/replication-client.pem --ssl-key={pki}/replication-client.key"
    replica.succeed(f"{account} {tls} -e 'SELECT 1'")
    # ...and cannot connect without TLS.
    code, out = replica.execute(f"{account} --skip-ssl -e 'SELECT 1' 2>&1")
    assert code != 0 and "insecure transport" in out.lower(), f"expected a refusal for insecure transport, got {code}: {out}"
    # The monitoring host's verdict: replica threads running over TLS, lag within bounds.
    monitoring.wait_until_succeeds(reach(monitoring.name, "--only replication"), timeout=60)

with subtest("etcd"):
    # Every member healthy over TLS, asked with a database host's etcd-client certificate;
    # the same request without a client certificate is refused. (The "firewall" subtest
    # proved the ports closed to non-members: reach's port matrix has etcd's services.)
    endpoints = ",".join(f"https://{address[name]}:{ports['etcdClient']}" for name in params["servers"])
    pki = params["pkiDir"]
    etcdctl = f"etcdctl --command-timeout=5s --endpoints={endpoints} --cacert={pki}/ca.pem"
    primary.wait_until_succeeds(
        f"{etcdctl} --cert={pki}/etcd-client.pem --key={pki}/etcd-client.key endpoint health --cluster", timeout=60
    )
    primary.succeed(f"{etcdctl} --cert={pki}/etcd-client.pem --key={pki}/etcd-client.key put /rampart/three-vm ok")
    primary.fail(f"{etcdctl} get /rampart/three-vm")

with subtest("alerting"):
    # At rest the request rate is far below the threshold: HighQPS does not fire.
    monitoring.wait_until_succeeds(f"curl -sf {prom_api}/targets | jq -e '.data.activeTargets | all(.health == \"up\")'", timeout=120)
    monitoring.succeed(f"! {firing('HaproxyHighQPS')}")
    # Bounded load from the client, well above the threshold, for 60 s at most.
    client.succeed(f"systemd-run --setenv=PATH --unit=load wrk -t2 -c16 -d60s --timeout 5s {https_url}/")
    # HighQPS fires and its notification reaches the topology's webhook receiver.
    monitoring.wait_until_succeeds(firing("HaproxyHighQPS"), timeout=90)
    sink.wait_until_succeeds(delivered("HaproxyHighQPS"), timeout=90)
    monitoring.succeed(reach(monitoring.name, "--only alerts --expect-alert HaproxyHighQPS"))
    client.succeed("systemctl stop load.service || true")

with subtest("backend-down"):
    # Under steady requests, one web host's nginx stops: the others keep the site serving.
    victim = servers[params["webs"][0]]
    steady = (
        "failed=0; for i in $(seq 1 400); do "
        f"{curl_tls} -o /dev/null {https_url}/ || failed=$((failed + 1)); "
        "echo $i > /tmp/steady.done; sleep 0.05; done; echo $failed > /tmp/steady.failed"
    )
    client.succeed(f"systemd-run --setenv=PATH --unit=steady sh -c '{steady}'")
    client.wait_until_succeeds("test $(cat /tmp/steady.done) -ge 50", timeout=60)
    victim.succeed("systemctl stop nginx.service")
    # HAProxy marks it DOWN, BackendDown fires and reaches the receiver.
    monitoring.wait_until_succeeds(firing("HaproxyBackendDown"), timeout=90)
    sink.wait_until_succeeds(delivered("HaproxyBackendDown"), timeout=90)
    client.wait_until_succeeds("test -f /tmp/steady.failed", timeout=120)
    failed = int(client.succeed("cat /tmp/steady.failed"))
    assert failed == 0, f"{failed} of 400 requests failed while a backend went down (expected 0: retries and redispatch)"
    # Back up, it rejoins: every backend UP again.
    victim.succeed("systemctl start nginx.service")
    lb.wait_until_succeeds(reach(lb.name, "--only haproxy"), timeout=60)

with subtest("planned-removal"):
    # Under steady GETs and POSTs: `rampart-lb drain` takes a web host out through HAProxy's
    # admin socket (returning once its sessions have ended), its nginx and application
    # restart, `rampart-lb ready` readmits it once its health check passes, then HAProxy
    # reloads. Nothing fails: a planned change costs no request.
    host = params["webs"][-1]
    steady = (
        "failed=0; for i in $(seq 1 300); do "
        f"{curl_tls} -o /dev/null {https_url}/ || failed=$((failed + 1)); "
        f"{curl_tls} -o /dev/null -X POST \"{https_url}/visit?request=vm-planned-$i\" || failed=$((failed + 1)); "
        "echo $i > /tmp/planned.done; sleep 0.05; done; echo $failed > /tmp/planned.failed"
    )
    client.succeed(f"systemd-run --setenv=PATH --unit=planned sh -c '{steady}'")
    client.wait_until_succeeds("test $(cat /tmp/planned.done) -ge 30", timeout=60)
    lb.succeed(f"rampart-lb drain {host} --wait 30")
    servers[host].succeed("systemctl restart nginx.service rampart-app.service")
    lb.succeed(f"rampart-lb ready {host} --wait 60")
    lb.succeed("systemctl reload haproxy.service")
    client.wait_until_succeeds("test -f /tmp/planned.failed", timeout=180)
    failed = int(client.succeed("cat /tmp/planned.failed"))
    assert failed == 0, f"{failed} of 600 requests failed during a drain, restart, ready and reload (expected 0)"
    lb.succeed(reach(lb.name, "--only haproxy"))

with subtest("reach"):
    # Finally the whole verdict from every vantage: ports, TLS, load balancer, monitoring,
    # replication, certificates, as hosts/topology.json declares.
    for vantage, machine in list(clients.items()) + list(servers.items()):
        machine.wait_until_succeeds(reach(vantage), timeout=60)
