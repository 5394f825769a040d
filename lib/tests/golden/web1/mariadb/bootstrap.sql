-- mariadb/bootstrap.sql for web1 (10.42.0.11), rendered by rampart from hosts/topology.json.
-- Do not edit: change the topology or the settings and render again (lib/render/mariadb.nix).
--
-- Run once after the first start, as root over the local socket. Placeholders are
-- replaced at run time, in a pipe (never written to disk), from /run/secrets/rampart/
-- (escape \ and ' in the values):
--   @APP_DB_PASSWORD@ from app-db-password
--   @EXPORTER_DB_PASSWORD@ from exporter-db-password
--   @FAILOVER_DB_PASSWORD@ from failover-db-password
--   @REPLICATION_PASSWORD@ from replication-password

-- Accounts are created here only: they replicate to the replica. Running this again
-- replaces them, which also rotates their passwords.

CREATE DATABASE IF NOT EXISTS `rampart` CHARACTER SET utf8mb4;

-- Replication: TLS with the replica host's own client certificate, from its address.
CREATE OR REPLACE USER 'rampart_repl'@'10.42.0.11' IDENTIFIED BY '@REPLICATION_PASSWORD@'
  REQUIRE SUBJECT '/CN=web1.rampart.internal';
GRANT REPLICATION SLAVE ON *.* TO 'rampart_repl'@'10.42.0.11';
CREATE OR REPLACE USER 'rampart_repl'@'10.42.0.12' IDENTIFIED BY '@REPLICATION_PASSWORD@'
  REQUIRE SUBJECT '/CN=web2.rampart.internal';
GRANT REPLICATION SLAVE ON *.* TO 'rampart_repl'@'10.42.0.12';

-- The application writes here from every web host, over TLS.
CREATE OR REPLACE USER 'rampart_app'@'10.42.0.11' IDENTIFIED BY '@APP_DB_PASSWORD@' REQUIRE SSL;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `rampart`.* TO 'rampart_app'@'10.42.0.11';
CREATE OR REPLACE USER 'rampart_app'@'10.42.0.12' IDENTIFIED BY '@APP_DB_PASSWORD@' REQUIRE SSL;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `rampart`.* TO 'rampart_app'@'10.42.0.12';

-- The mysqld exporter: local socket only, read-only server status, few connections.
CREATE OR REPLACE USER 'rampart_exporter'@'localhost' IDENTIFIED BY '@EXPORTER_DB_PASSWORD@' WITH MAX_USER_CONNECTIONS 3;
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'rampart_exporter'@'localhost';

-- Failover (rampart-db): from every database host, over TLS.
CREATE OR REPLACE USER 'rampart_failover'@'10.42.0.11' IDENTIFIED BY '@FAILOVER_DB_PASSWORD@' REQUIRE SSL;
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG MONITOR, RELOAD ON *.* TO 'rampart_failover'@'10.42.0.11';
CREATE OR REPLACE USER 'rampart_failover'@'10.42.0.12' IDENTIFIED BY '@FAILOVER_DB_PASSWORD@' REQUIRE SSL;
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG MONITOR, RELOAD ON *.* TO 'rampart_failover'@'10.42.0.12';
