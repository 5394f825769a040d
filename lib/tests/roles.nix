# lib/tests/roles.nix: the role table (lib/roles.nix) over the shipped topology: which
# concerns each host runs, and the lookups the modules' assertions use.
let
  inherit (builtins) tryEval;
  lib = import ../. {};
  inherit (lib) roles;
  shipped = lib.shippedTopology;

  # The concerns a host runs, by their option names.
  runsOn = topo: name: namesOf (lib.topology.hostByName topo name);
  namesOf = host: map roles.name (roles.enabledOn host);
  everywhere = ["rampart.firewall.enable" "rampart.monitoring.enable" "rampart.resources.enable" "rampart.ssh.enable" "rampart.etcd.enable"];
in {
  testLoadBalancerAndMonitoring = {
    expr = runsOn shipped "lb";
    expected = everywhere ++ ["rampart.loadBalancer.enable" "rampart.monitoring.server.enable"];
  };
  testWebAndDatabasePrimary = {
    expr = runsOn shipped "web1";
    expected = everywhere ++ ["rampart.web.enable" "rampart.app.enable" "rampart.database.enable"];
  };
  # The replica runs the same database concern; the topology says which role it has.
  testWebAndDatabaseReplica = {
    expr = runsOn shipped "web2";
    expected = runsOn shipped "web1";
  };
  # A web host without a database role (a third web host): nginx and the application only.
  testWebOnly = {
    expr = namesOf {
      name = "web3";
      roles = ["web"];
    };
    expected = everywhere ++ ["rampart.web.enable" "rampart.app.enable"];
  };

  # Every role of the topology calls for at least one concern, and the table names no other.
  testEveryRoleCovered = {
    expr = builtins.filter (role: !(builtins.any (concern: concern.roles != null && builtins.elem role concern.roles) roles.concerns)) lib.topology.roles;
    expected = [];
  };

  testByOption = {
    expr = (roles.byOption ["database" "enable"]).roles;
    expected = ["databasePrimary" "databaseReplica"];
  };
  testByOptionUnknown = {
    expr = (tryEval (roles.byOption ["loadBalncer" "enable"])).success;
    expected = false;
  };
  testNoHostRunsNothing = {
    expr = roles.runs {roles = [];} (roles.byOption ["web" "enable"]);
    expected = false;
  };
}
