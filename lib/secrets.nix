/*
lib/secrets.nix: the runtime secrets of a rampart deployment, one value per file in
`settings.secretsDir` (docs/contracts.md, "Secrets"): which files each host needs, who
reads each and what it holds.

This is the one list. The NixOS modules load a unit's secrets from it (`LoadCredential=`),
the database bootstrap fills the placeholders it names, `rampart-db` gets the variables it
names, the lab generates exactly these files per host, the three-VM test provisions them,
and the docs' table is generated from it (`markdownTable`, checked by lib/tests). A secret
is on a host's list when a reader of it runs there: readers come with the concerns
(lib/roles.nix) the host runs.

# Inputs

`forHost { topology, host, settings ? { }, concerns ? <from the host's roles> }`
: a validated topology, the host (an element of `topology.hosts` or its name), settings
  (lib/settings.nix; `mariadb.*` for the account names) and the concerns that run there
  (`{ app = true; database = false; … }`, as `rampart.<concern>.enable`)

# Type

```
forHost :: { … } -> { <file name> = { holds :: string; placeholder :: string;
                                      readers = [ { name; kind = "unit" | "command"; why;
                                                    variable ? string; } ]; }; }
readBy :: secrets -> string -> [ string ]  (the secrets a unit or command reads)
```

# Examples

```nix
builtins.attrNames (forHost { topology = lib.shippedTopology; host = "lb"; })
=> [ ]
(forHost { topology = lib.shippedTopology; host = "web2"; })."failover-db-password".readers
=> [ { kind = "command"; name = "rampart-db"; variable = "RAMPART_DB_PASSWORD_FILE"; why = "…"; } ]
```
*/
let
  inherit (builtins) all attrNames concatMap concatStringsSep elem filter listToAttrs;
  topologyLib = import ./topology.nix;
  roles = import ./roles.nix;
  common = import ./render/common.nix;

  # Every secret: what it holds (for the docs) and the placeholder of mariadb/bootstrap.sql
  # it fills (`@<placeholder>@`, lib/render/mariadb.nix).
  catalog = settings: let
    m = (common.mergeSettings settings).mariadb;
  in {
    "replication-password" = {
      holds = "the password of `${m.replicationUser}`, the account a replica replicates with";
      placeholder = "REPLICATION_PASSWORD";
    };
    "app-db-password" = {
      holds = "the password of `${m.appUser}`, the application's account";
      placeholder = "APP_DB_PASSWORD";
    };
    "exporter-db-password" = {
      holds = "the password of `${m.exporterUser}`, the mysqld exporter's account";
      placeholder = "EXPORTER_DB_PASSWORD";
    };
    "failover-db-password" = {
      holds = "the password of `${m.failoverUser}`, the account `rampart-db` logs in with";
      placeholder = "FAILOVER_DB_PASSWORD";
    };
  };

  # Who reads secrets, and where: a systemd unit through LoadCredential=, or a command
  # through an environment variable naming the file. `concerns` must all run on the host,
  # and `on` must hold for it.
  readers = [
    {
      name = "rampart-database-bootstrap";
      kind = "unit";
      concerns = ["database"];
      on = host: topologyLib.hasRole host "databasePrimary";
      secrets = ["replication-password" "app-db-password" "exporter-db-password" "failover-db-password"];
      why = "fills the placeholders of the accounts it creates, once";
    }
    {
      name = "rampart-database-bootstrap";
      kind = "unit";
      concerns = ["database"];
      on = host: !(topologyLib.hasRole host "databasePrimary");
      secrets = ["replication-password"];
      why = "`CHANGE MASTER TO … MASTER_PASSWORD`, once";
    }
    {
      name = "rampart-app";
      kind = "unit";
      concerns = ["app"];
      on = _: true;
      secrets = ["app-db-password"];
      why = "logs in to the database";
    }
    {
      name = "rampart-mysqld-exporter-config";
      kind = "unit";
      concerns = ["monitoring" "database"];
      on = _: true;
      secrets = ["exporter-db-password"];
      why = "writes the mysqld exporter's client file";
    }
    {
      # Promotion and rejoin run on either database host (docs/failover.md).
      name = "rampart-db";
      kind = "command";
      concerns = ["database"];
      on = _: true;
      variables = {
        RAMPART_DB_PASSWORD_FILE = "failover-db-password";
        RAMPART_DB_REPLICATION_PASSWORD_FILE = "replication-password";
      };
      why = "status, promote, fence, rejoin";
    }
  ];

  secretsOf = reader: reader.secrets or (map (variable: reader.variables.${variable}) (attrNames reader.variables));
  variableOf = reader: secret: filter (variable: reader.variables.${variable} == secret) (attrNames (reader.variables or {}));

  forHost = {
    topology,
    host,
    settings ? {},
    concerns ? null,
  }: let
    self = common.resolveHost topology host;
    running =
      if concerns == null
      then roles.runsByName self
      else concerns;
    present = filter (r: all (c: running.${c} or false) r.concerns && r.on self) readers;
    readersOf = secret:
      map (r:
        {
          inherit (r) name kind why;
        }
        // (
          if r.kind == "command"
          then {variable = builtins.head (variableOf r secret);}
          else {}
        ))
      (filter (r: elem secret (secretsOf r)) present);
    known = catalog settings;
  in
    listToAttrs (concatMap (secret: let
      found = readersOf secret;
    in
      if found == []
      then []
      else [
        {
          name = secret;
          value = known.${secret} // {readers = found;};
        }
      ]) (attrNames known));

  # The secrets `reader` (a unit or command name) reads, among a host's list.
  readBy = secrets: reader: filter (secret: builtins.any (r: r.name == reader) secrets.${secret}.readers) (attrNames secrets);

  # Every host's list: { <host> = forHost …; }.
  perHost = {
    topology,
    settings ? {},
  }:
    listToAttrs (map (host: {
        inherit (host) name;
        value = forHost {inherit topology settings host;};
      })
      topology.hosts);

  /*
  The docs' table (README.md, docs/nixos.md, docs/contracts.md): one row per host and
  secret, for the shipped topology with the default settings.
  */
  markdownTable = {
    topology,
    settings ? {},
  }: let
    hosts = perHost {inherit topology settings;};
    dir = (common.mergeSettings settings).secretsDir;
    reader = r:
      if r.kind == "command"
      then "`${r.name}` (`${r.variable}`)"
      else "`${r.name}.service`";
    row = host: secret: let
      s = hosts.${host}.${secret};
    in "| ${host} | `${secret}` | ${s.holds} | ${concatStringsSep ", " (map reader s.readers)} |";
  in
    concatStringsSep "\n" ([
        "| host | file in `${dir}` | holds | read by |"
        "|---|---|---|---|"
      ]
      ++ concatMap (host:
        if hosts.${host} == {}
        then ["| ${host} | (none) | | |"]
        else map (row host) (attrNames hosts.${host}))
      (map (h: h.name) topology.hosts))
    + "\n";
in {
  inherit catalog forHost readBy perHost markdownTable;
}
