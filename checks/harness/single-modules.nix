# checks/harness/single-modules.nix: each file of modules/ on its own, as the flake exports
# it (nixosModules.<file name>, package defaults included), with its concern enabled on a
# host whose roles fit.
#
# A user may import nixosModules.firewall without the rest; this proves every module file
# brings the options it reads (topology.nix, resources.nix) and nothing more is needed.
#
# Result: [ { file; failedAssertions = [ message ]; evaluated :: bool; } ], plus a throw
# naming any module file without a case here.
{nixpkgsLib}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  pkgs = import ./stub-pkgs.nix;
  flake = import ./flake-outputs.nix {inherit lib;};
  rampartLib = import ../../lib {};
  topo = rampartLib.shippedTopology;
  hostWith = role: (builtins.head (rampartLib.topology.hostsWithRole topo role)).name;

  # Per module file: the host it is tried on and what it sets there.
  cases = {
    "topology.nix" = {
      host = hostWith "web";
      set = {};
    };
    # Beside topology.nix alone it finds no concern to switch on.
    "roles.nix" = {
      host = hostWith "web";
      set = {};
    };
    "firewall.nix" = {
      host = hostWith "web";
      set.rampart.firewall.enable = true;
    };
    "ssh.nix" = {
      host = hostWith "loadBalancer";
      set.rampart.ssh.enable = true;
    };
    "load-balancer.nix" = {
      host = hostWith "loadBalancer";
      set.rampart.loadBalancer.enable = true;
    };
    "web.nix" = {
      host = hostWith "web";
      set.rampart.web.enable = true;
    };
    "database.nix" = {
      host = hostWith "databaseReplica";
      set.rampart.database.enable = true;
    };
    "monitoring.nix" = {
      host = hostWith "monitoring";
      set.rampart.monitoring = {
        enable = true;
        server.enable = true;
      };
    };
    "resources.nix" = {
      host = hostWith "web";
      set.rampart.resources = {
        enable = true;
        units = ["nginx"];
      };
    };
    "app.nix" = {
      host = hostWith "web";
      set.rampart.app.enable = true;
    };
    # Every host is a member; the tie-breaker is the interesting one.
    "etcd.nix" = {
      host = hostWith "loadBalancer";
      set.rampart.etcd.enable = true;
    };
  };

  moduleFiles = lib.filter (file: lib.hasSuffix ".nix" file && file != "default.nix" && file != "lib.nix") (lib.attrNames (builtins.readDir ../../modules));
  uncovered = lib.filter (file: !(cases ? ${file})) moduleFiles;

  check = file: let
    case = cases.${file};
    eval = lib.evalModules {
      modules = [
        ./nixpkgs-options.nix
        ./nixpkgs-units.nix
        flake.nixosModules.${lib.removeSuffix ".nix" file}
        {
          networking.hostName = case.host;
          _module.args.pkgs = pkgs;
        }
        case.set
      ];
    };
    inherit (import ./verdict.nix {inherit lib;} eval) failedAssertions evaluated;
  in {
    inherit file failedAssertions evaluated;
  };
in
  if uncovered != []
  then throw "checks/harness/single-modules.nix: no case for ${lib.concatStringsSep ", " uncovered}; add one (a host whose roles fit, and the options that enable it)"
  else map check moduleFiles
