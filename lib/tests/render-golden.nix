# lib/tests/render-golden.nix: `lib.rendered` (shipped topology, default settings) is exactly
# lib/tests/golden/<host>/<path>, for the files of the etcd, HAProxy, nginx, nftables, MariaDB
# and sshd
# renderers. A difference is either a bug or an intended change: then run
# scripts/update-golden.sh and review `git diff lib/tests/golden`.
let
  inherit (builtins) attrNames concatMap elem filter head listToAttrs pathExists readDir readFile split;
  support = import ./support/render.nix;
  golden = ./golden;
  rendered = support.renderShipped;

  # The daemons (first path component) whose golden files this suite owns.
  daemons = ["etcd" "haproxy" "mariadb" "nftables" "nginx" "ssh"];
  ours = path: elem (head (split "/" path)) daemons;

  # Every file under a directory, as paths relative to it.
  filesUnder = dir: prefix:
    concatMap (name: let
      kind = (readDir dir).${name};
    in
      if kind == "directory"
      then filesUnder (dir + "/${name}") "${prefix}${name}/"
      else ["${prefix}${name}"]) (attrNames (readDir dir));

  goldenFiles = host:
    if pathExists (golden + "/${host}")
    then filter ours (filesUnder (golden + "/${host}") "")
    else [];
in
  listToAttrs (concatMap (host:
    map (path: {
      name = "test-${host}-${path}";
      value = {
        expr = rendered.${host}.${path};
        expected =
          if pathExists (golden + "/${host}/${path}")
          then readFile (golden + "/${host}/${path}")
          else "(no golden file lib/tests/golden/${host}/${path}; run scripts/update-golden.sh)";
      };
    }) (filter ours (attrNames rendered.${host})))
  (attrNames rendered))
  // {
    # The same set of files on both sides: no golden file without its renderer.
    testNoStaleGoldenFiles = {
      expr = map (host: goldenFiles host) (attrNames rendered);
      expected = map (host: filter ours (attrNames rendered.${host})) (attrNames rendered);
    };
    testEveryHostHasAFirewall = {
      expr = filter (host: !(rendered.${host} ? "nftables/ruleset.nft")) (attrNames rendered);
      expected = [];
    };
  }
