# rampart: a three-server web infrastructure (lb: HAProxy + monitoring; web1/web2: nginx +
# MariaDB primary/replica) on NixOS, described once in hosts/topology.json.
#
# `lib` is pure (builtins only) and never touches `nixpkgs`, so `nix eval .#lib…` works
# offline without a binary cache; flake inputs are fetched lazily, only by outputs that use
# them (packages, devShells, nixosConfigurations).
{
  description = "rampart: HAProxy + nginx + MariaDB on NixOS, generated from hosts/topology.json";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

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
  in {
    inherit lib;

    nixosModules.default = ./modules/default.nix;

    # One system per host of hosts/topology.json. Skeletal until the host files exist:
    # hosts/<name>.nix is added only when present.
    nixosConfigurations = builtins.listToAttrs (map (name: {
        inherit name;
        value = nixpkgs.lib.nixosSystem {
          inherit system;
          modules =
            [
              self.nixosModules.default
              {networking.hostName = name;}
            ]
            ++ (
              let
                hostFile = ./hosts + "/${name}.nix";
              in
                if builtins.pathExists hostFile
                then [hostFile]
                else []
            );
        };
      })
      hostNames);

    packages.${system} = {
      default = rustTool "rampart-tools" [];
      certtool = rustTool "certtool" ["certtool"];
      reach = rustTool "reach" ["reach"];
      infralab = rustTool "infralab" ["infralab"];
    };

    # The VM test (checks/) lands with the modules; nothing to check here yet.
    checks.${system} = {};

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
