# lib/tests/secrets.nix: the secrets list (lib/secrets.nix): per host exactly what its
# concerns read, and the docs' tables are generated from it.
let
  inherit (builtins) attrNames elemAt filter isList length match readFile split;
  support = import ./support/render.nix;
  inherit (support) lib shipped fourWeb;
  secrets = lib.secrets;
  forHost = host:
    secrets.forHost {
      topology = shipped;
      inherit host;
    };
  readers = host: secret: map (r: r.name) (forHost host).${secret}.readers;

  # The text between the markers of a doc's secrets table.
  tableIn = file: let
    parts = split "<!-- secrets table: [^>]*-->\n(.*)<!-- end of secrets table -->" (readFile file);
  in
    if length parts == 3
    then builtins.head (elemAt parts 1)
    else "(no secrets table markers in ${toString file})";
  generated = secrets.markdownTable {topology = shipped;};
in {
  testTheLoadBalancerNeedsNone = {
    expr = forHost "lb";
    expected = {};
  };
  testEveryDatabaseHostNeedsAllFour = {
    expr = map (host: attrNames (forHost host)) ["web1" "web2"];
    expected = [
      ["app-db-password" "exporter-db-password" "failover-db-password" "replication-password"]
      ["app-db-password" "exporter-db-password" "failover-db-password" "replication-password"]
    ];
  };
  # The defect of issue 13: the primary's bootstrap loads the failover password too.
  testThePrimarysBootstrapReadsEveryPassword = {
    expr = secrets.readBy (forHost "web1") "rampart-database-bootstrap";
    expected = ["app-db-password" "exporter-db-password" "failover-db-password" "replication-password"];
  };
  testTheReplicasBootstrapReadsTheReplicationPasswordOnly = {
    expr = secrets.readBy (forHost "web2") "rampart-database-bootstrap";
    expected = ["replication-password"];
  };
  testRampartDbFindsItsFilesByVariable = {
    expr = map (r: r.variable or null) (forHost "web2")."failover-db-password".readers;
    expected = ["RAMPART_DB_PASSWORD_FILE"];
  };
  testAWebHostWithoutDatabaseNeedsTheAppPasswordOnly = {
    expr = map (host:
      attrNames (secrets.forHost {
        topology = fourWeb;
        inherit host;
      })) (map (h: h.name) (filter (h: lib.topology.hasRole h "web" && !(lib.topology.hasRole h "databasePrimary" || lib.topology.hasRole h "databaseReplica")) fourWeb.hosts));
    expected = [["app-db-password"] ["app-db-password"]];
  };
  testConcernsDecide = {
    expr = attrNames (secrets.forHost {
      topology = shipped;
      host = "web1";
      concerns = {
        app = true;
        database = false;
        monitoring = true;
      };
    });
    expected = ["app-db-password"];
  };
  testAppReaderIsTheAppUnit = {
    expr = readers "web2" "app-db-password";
    expected = ["rampart-app"];
  };
  testPlaceholdersAreOnePerSecret = {
    expr = map (s: (secrets.catalog {}).${s}.placeholder) (attrNames (secrets.catalog {}));
    expected = ["APP_DB_PASSWORD" "EXPORTER_DB_PASSWORD" "FAILOVER_DB_PASSWORD" "REPLICATION_PASSWORD"];
  };
  # The docs tell users exactly what the list says (scripts/update-golden.sh writes them).
  testReadmeTable = {
    expr = tableIn ../../README.md;
    expected = generated;
  };
  testNixosDocTable = {
    expr = tableIn ../../docs/nixos.md;
    expected = generated;
  };
  testContractsTable = {
    expr = tableIn ../../docs/contracts.md;
    expected = generated;
  };
  testTableRowPerHostAndSecret = {
    expr = length (filter (line: isList line || match "\\| (lb|web[12]) \\|.*" line != null) (filter builtins.isString (split "\n" generated)));
    expected = 9;
  };
}
