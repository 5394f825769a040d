# checks/harness/stub-pkgs.nix: the `pkgs` the module harness evaluates against.
#
# There is no nixpkgs on the machines that run the harness, only its library. The rampart
# modules use a handful of packages and writers; here each is a fake derivation (an
# attrset with `type = "derivation"` and a store-like `outPath`), which is all that option
# types (`types.package`, `types.path`) and string interpolation look at. Nothing is built.
# A module that uses a package missing here fails with "attribute '<name>' missing": add it.
let
  fake = name: {
    type = "derivation";
    inherit name;
    pname = name;
    version = "0";
    outPath = "${builtins.storeDir}/00000000000000000000000000000000-${name}";
    meta = {};
  };
  # A writer's result stands for the file it would write: fake, but named after it. The
  # content is still evaluated, so a mistake inside a generated script surfaces here too.
  writer = name: content: builtins.seq (builtins.stringLength content) (fake name);
in {
  stdenv.hostPlatform.system = "x86_64-linux";

  # Packages, by the attribute names nixpkgs 26.05 gives them.
  mariadb = fake "mariadb";
  etcd = fake "etcd";
  coreutils = fake "coreutils";
  haproxy = fake "haproxy";
  nginx = fake "nginx";
  python3 = fake "python3";
  nftables = fake "nftables";
  util-linux = fake "util-linux";
  curl = fake "curl";
  jq = fake "jq";
  wrk = fake "wrk";
  # The rampart flake's own packages (packages.<system> in flake.nix).
  rampart-app = fake "rampart-app";
  reach = fake "reach";
  certtool = fake "certtool";
  rampart-db = fake "rampart-db";
  rampart-lb = fake "rampart-lb";

  # Trivial builders (pkgs/build-support/trivial-builders).
  writeText = writer;
  writeShellScript = writer;
  writeShellScriptBin = writer;
}
