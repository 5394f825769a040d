# rampart: a three-server web infrastructure (lb: HAProxy + monitoring; web1/web2: nginx +
# MariaDB primary/replica) on NixOS, described once in hosts/topology.json.
#
# `lib` is pure (builtins only) and never touches `nixpkgs`, so `nix eval .#lib…` works
# offline without a binary cache; flake inputs are fetched lazily, only by outputs that use
# them (packages, devShells, nixosConfigurations).
{
  description = "rampart: HAProxy + nginx + MariaDB on NixOS, generated from hosts/topology.json";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = {
    self,
    nixpkgs,
  }: let
    lib = import ./lib {};
    system = "x86_64-linux";
    pkgs = nixpkgs.legacyPackages.${system};

    # The workspace version, read from Cargo.toml so it is written in one place.
    version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;

    # Only what cargo needs, so editing Nix files or docs does not rebuild the tools.
    rustSource = nixpkgs.lib.fileset.toSource {
      root = ./.;
      fileset = nixpkgs.lib.fileset.unions [./Cargo.toml ./Cargo.lock ./tools ./scripts/nix.conf];
    };

    # One derivation per tool; `cargoPackages = [ ]` builds the whole workspace.
    rustTool = pname: cargoPackages:
      pkgs.rustPlatform.buildRustPackage {
        inherit pname version;
        src = rustSource;
        cargoLock.lockFile = ./Cargo.lock;
        cargoBuildFlags = builtins.concatMap (p: ["-p" p]) cargoPackages;
        cargoTestFlags = builtins.concatMap (p: ["-p" p]) cargoPackages;
      };

    hostNames = map (host: host.name) lib.shippedTopology.hosts;
    hosts = import ./hosts;

    # The flake's own packages as defaults (mkDefault) of the options that run them, for
    # the module files that have such options.
    packageDefaults = {
      "app.nix" = packages: {rampart.app.package = packages.rampart-app;};
      "monitoring.nix" = packages: {rampart.monitoring.reach.package = packages.reach;};
      "database.nix" = packages: {rampart.database.failover.package = packages.rampart-db;};
      "load-balancer.nix" = packages: {rampart.loadBalancer.drain.package = packages.rampart-lb;};
    };
    withPackages = files: {
      lib,
      pkgs,
      ...
    }: let
      packages = self.packages.${pkgs.stdenv.hostPlatform.system};
      defaults = map (file: packageDefaults.${file} packages) (builtins.filter (file: packageDefaults ? ${file}) files);
    in {
      imports = map (file: ./modules + "/${file}") files;
      config = lib.mkMerge (map (lib.mapAttrsRecursiveCond (value: !lib.isDerivation value) (_: lib.mkDefault)) defaults);
    };
    # Every module file but the shared helpers (lib.nix) and the set itself.
    moduleFiles = builtins.filter (file: file != "lib.nix" && file != "default.nix" && builtins.match ".*\\.nix" file != null) (builtins.attrNames (builtins.readDir ./modules));
  in {
    inherit lib;

    # One NixOS module per file of modules/, named after it (load-balancer.nix ↦
    # nixosModules.load-balancer), so name and location cannot drift; `default` is all of
    # them. Each concern module imports the shared options (topology.nix) itself.
    nixosModules =
      builtins.listToAttrs (map (file: {
          name = builtins.replaceStrings [".nix"] [""] file;
          value = withPackages [file];
        })
        moduleFiles)
      # The set itself too, for what only the whole set can check (modules/default.nix).
      // {default = withPackages (moduleFiles ++ ["default.nix"]);};

    # One system per host of hosts/topology.json; `nixos-rebuild switch --flake .#<name>`.
    nixosConfigurations = builtins.listToAttrs (map (name: {
        inherit name;
        value = nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            self.nixosModules.default
            (hosts.host name)
            (hosts.hardware name)
          ];
        };
      })
      hostNames);

    packages.${system} = {
      default = rustTool "rampart-tools" [];
      certtool = rustTool "certtool" ["certtool"];
      reach = rustTool "reach" ["reach"];
      infralab = rustTool "infralab" ["infralab"];
      rampart-app = rustTool "rampart-app" ["rampart-app"];
      rampart-db = rustTool "rampart-db" ["rampart-db"];
      rampart-lb = rustTool "rampart-lb" ["rampart-lb"];
    };

    # The three hosts and two clients as NixOS VMs (checks/three-vm.nix); needs KVM and a
    # binary cache, so it runs where those are, not in this repository's CI.
    checks.${system}.three-vm = import ./checks/three-vm.nix {inherit pkgs self;};

    formatter.${system} = pkgs.alejandra;

    devShells.${system}.default = pkgs.mkShell {
      packages = with pkgs; [
        cargo
        rustc
        clippy
        rustfmt
        alejandra
        deadnix
        nix
        haproxy
        nginx
        mariadb
        prometheus
        prometheus-alertmanager
        nftables
        openssl
      ];
    };
  };
}
