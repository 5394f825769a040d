# lib/settings.nix: the default settings of every renderer (docs/contracts.md, "Renderers").
#
# The topology says *what* runs *where*; settings say where the files live on a host and
# how each daemon is tuned. `lib.render { topology, settings }` merges the caller's settings
# over these recursively (a caller names only what it changes), so every key below is the
# complete list of what a renderer reads. Secrets are never settings: only the *paths* of
# the directories that hold them at run time.
#
# Fixed file names under the directories (contracts.md):
#   <pkiDir>/<stem>.pem|.key     certificates (ca.pem, https, backend-client, backend, mysql,
#                                replication-client, etcd-server, etcd-peer, etcd-client)
#   <secretsDir>/<name>          the secrets of lib/secrets.nix (which host needs which)
#   <runDir>/haproxy/stats.sock  HAProxy's stats socket (read by `reach`)
#
# Type: { pkiDir, secretsDir, runDir, stateDir :: string (absolute path);
#         tls, haproxy, nginx, mariadb, etcd, app :: attrs }
#
# Example (the lab: every path under its state directory, per host):
#   lib.render { topology = …; settings = name: { pkiDir = "/lab/${name}/pki"; }; }
{
  # Certificates and keys (certtool's runtimeDir); never in the Nix store.
  pkiDir = "/var/lib/rampart/pki";
  # One secret per file (sops-nix/agenix convention).
  secretsDir = "/run/secrets/rampart";
  # Sockets and pid files, one sub-directory per daemon.
  runDir = "/run/rampart";
  # Persistent state that is not a daemon's own data directory.
  stateDir = "/var/lib/rampart";

  # TLS everywhere rampart terminates it (HAProxy, nginx, MariaDB): one of Mozilla's
  # server-side TLS profiles in lib/tls-profiles.json (guidelines 5.7). Each daemon renders
  # the profile's protocol floor, cipher suites and key-exchange groups from it, and
  # `reach check --tls-profile` judges every TLS endpoint against the same profile.
  # "intermediate" (TLS 1.2 and 1.3, the default) or "modern" (TLS 1.3 only).
  tls.profile = "intermediate";

  haproxy = {
    # Global connection limit (`maxconn`): beyond it, clients queue in the kernel. HAProxy
    # needs about twice as many file descriptors and refuses to start without them.
    maxConnections = 4096;
    # Strict-Transport-Security max-age in seconds; at least one year (31536000).
    hstsMaxAge = 63072000;
    hstsIncludeSubdomains = false;
    # Backend health check: an HTTP GET over the backend TLS connection, through nginx to
    # the application, so a host whose application is down leaves the pool.
    healthCheck = {
      path = "/healthz";
      # HAProxy time format (`2s`, `500ms`).
      interval = "2s";
      # While a server's state is changing (a check failed while it was UP, or passed while
      # it was DOWN): a dead backend leaves, and a restarted one returns, sooner.
      fastInterval = "500ms";
      # While a server is DOWN.
      downInterval = "1s";
      # Consecutive failed checks before a server is marked DOWN, passed ones before UP.
      fall = 2;
      rise = 2;
    };
    # Attempts per request after a failed connection (or, for GET/HEAD/OPTIONS, no answer);
    # every retry goes to another server.
    retries = 3;
    # How long an old HAProxy process may finish its connections after a reload.
    hardStopAfter = "60s";
    # A backend connection whose sent data goes unacknowledged this long is dead (the host
    # cut off): the kernel closes it and HAProxy sends a GET to another server, instead of
    # waiting `timeouts.server` for an answer that cannot come (TCP_USER_TIMEOUT, `tcp-ut`).
    # A slow answer is not cut: the request itself is acknowledged at once.
    backendUserTimeout = "2s";
    timeouts = {
      # A connection to a backend on the same network takes a millisecond; Linux resends a
      # lost SYN after 1 s. Past 2 s the backend is gone (cut off, or its listener closing
      # under the handshake) and the request is better sent to another server at once.
      connect = "2s";
      client = "30s";
      server = "30s";
      httpRequest = "10s";
      httpKeepAlive = "10s";
      queue = "10s";
      check = "2s";
    };
  };

  nginx = {
    # Loopback port of the `stub_status` endpoint (path /stub_status) that the nginx
    # exporter scrapes; never reachable from another host.
    stubStatusPort = 8081;
    # Idle keep-alive connections to the application kept per worker.
    upstreamKeepalive = 32;
    clientMaxBodySize = "1m";
    # Security headers added to every response from the application.
    contentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'";
    referrerPolicy = "no-referrer";
    # The main configuration around those blocks, the same on NixOS (services.nginx's
    # appendConfig, eventsConfig, commonHttpConfig and user) and in the lab
    # (nginx/nginx.conf). One worker per core: nginx terminates the backend TLS, and with
    # one worker the lab measured 10-15 % less throughput (docs/lab.md).
    workerProcesses = "auto";
    # Connections per worker; nginx's default (512) is far below HAProxy's maxconn. The
    # workers may open twice as many files (a client and an upstream side each).
    workerConnections = 4096;
    # Every request, in the combined format, written in 64k blocks at least every 5 s;
    # null: no access log. HAProxy logs nothing, so this is the request trail.
    accessLog = "/var/log/nginx/access.log";
    # The unprivileged user the workers run as (on NixOS the master too).
    user = "nginx";
    # The static site nginx serves beside the application (rampart.web.site; the repo's
    # site/ by default): the directory it reads, and the URL path it answers under. The
    # NixOS module sets `root` to the site's store path.
    site = {
      root = "/var/lib/rampart/site";
      urlPath = "/site/";
    };
  };

  mariadb = {
    # The application's database and the accounts the bootstrap SQL creates. Passwords
    # come from <secretsDir> at run time (placeholders in mariadb/bootstrap.sql).
    database = "rampart";
    appUser = "rampart_app";
    exporterUser = "rampart_exporter";
    replicationUser = "rampart_repl";
    # The account `rampart-db` (promotion, rejoin) logs in with from every database host.
    failoverUser = "rampart_failover";
    # How long (ms) a commit on the primary waits for the replica's acknowledgement before
    # MariaDB itself falls back to asynchronous replication: about a year, i.e. never. The
    # failover agent decides instead, after recording the replica out of sync in etcd
    # (policy `available`), or never (policy `strict`); docs/failover.md.
    semiSyncTimeoutMs = 31536000000;
    # Whether commits wait while no replica is connected at all. On: a lost replica never
    # turns the waiting off behind the agent's back.
    semiSyncWaitNoReplica = true;
    # Seconds without data from the primary before the replica reconnects.
    replicaNetTimeout = 10;
    binlogExpireDays = 7;
    maxConnections = 200;
    innodbBufferPoolSize = "128M";
  };

  etcd = {
    # Raft timing in milliseconds (lib/render/etcd.nix says why): etcd's defaults, sized
    # for one LAN. The election timeout bounds how long a lost etcd leader stalls writes
    # and lease renewals; keep lease TTLs at several times it.
    heartbeatIntervalMs = 100;
    electionTimeoutMs = 1000;
    # History kept for watches before compaction (a Go duration).
    autoCompactionRetention = "1h";
  };

  # The failover agents (rampart-db agent, docs/failover.md); the same on every database host.
  failover = {
    # "available" (the default, as Patroni's): after 2 s of waiting for the sync replica
    # the leader records it out of sync in etcd, then writes go on without it. "strict":
    # writes wait for the replica however long.
    policy = "available";
    # The leader lease's TTL in seconds: the writer gate closes a fifth of it before the
    # lease can expire, and a lost leader is replaced about one TTL after its last renewal.
    leaseTtl = 5;
  };

  app = {
    # Loopback port the application listens on; nginx proxies to 127.0.0.1:<port>.
    port = 8080;
  };
}
