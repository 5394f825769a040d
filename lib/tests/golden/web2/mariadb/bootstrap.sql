-- mariadb/bootstrap.sql for web2 (10.42.0.12), rendered by rampart from hosts/topology.json.
-- Do not edit: change the topology or the settings and render again (lib/render/mariadb.nix).
--
-- Run once after the first start, as root over the local socket. Placeholders are
-- replaced at run time, in a pipe (never written to disk), from /run/secrets/rampart/
-- (escape \ and ' in the values):
--   @REPLICATION_PASSWORD@ from replication-password

-- Replicate from web1 over TLS: its certificate is verified against the rampart CA
-- and its address, this host presents its replication client certificate, and GTIDs
-- position the stream (no binlog file names to copy). Running this again is harmless.
STOP SLAVE;
CHANGE MASTER TO
  MASTER_HOST = '10.42.0.11',
  MASTER_PORT = 3306,
  MASTER_USER = 'rampart_repl',
  MASTER_PASSWORD = '@REPLICATION_PASSWORD@',
  MASTER_SSL = 1,
  MASTER_SSL_CA = '/var/lib/rampart/pki/ca.pem',
  MASTER_SSL_CERT = '/var/lib/rampart/pki/replication-client.pem',
  MASTER_SSL_KEY = '/var/lib/rampart/pki/replication-client.key',
  MASTER_SSL_VERIFY_SERVER_CERT = 1,
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 5;
START SLAVE;
