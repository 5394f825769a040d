# checks/secrets.nix: the modules' secrets against lib/secrets.nix, with builtins only.
#
# The part of the secrets check that needs no nixpkgs, so CI runs it everywhere (the module
# harness then evaluates every unit: checks/harness/secrets.nix). In modules/*.nix:
#   - every `LoadCredential =` is built by helpers.loadPki or helpers.loadSecrets (which
#     loads exactly what the list gives the unit), and no unit has an EnvironmentFile=;
#   - every `helpers.loadSecrets "<unit>"` names a unit reader of the list, and every unit
#     reader of the list is loaded that way somewhere;
#   - rampart-db's wrapper exports the variables the list gives it (from the list).
# For every host of the shipped topology, the placeholders of its rendered bootstrap SQL
# are exactly those of the secrets the list gives rampart-database-bootstrap there.
#
#   nix-instantiate --eval --strict --json checks/secrets.nix   => [ problem ] ([] is a pass)
let
  inherit (builtins) attrNames concatMap elem filter head isList match readDir readFile split;
  rampartLib = import ../lib {};
  topology = rampartLib.shippedTopology;
  util = import ../lib/util.nix;

  moduleFiles = filter (file: match ".*\\.nix" file != null) (attrNames (readDir ../modules));
  source = file: readFile (../modules + "/${file}");

  # Every match of `regex` (with one group) in `text`: the groups, in order.
  matches = regex: text: map head (filter isList (split regex text));

  # What follows `LoadCredential =`: its first word must be one of the helpers.
  credentialProblems = file:
    map (rest: "modules/${file}: LoadCredential = ${rest}…: build it with helpers.loadSecrets (secrets, from lib/secrets.nix) or helpers.loadPki (certificates)")
    (filter (rest: match "helpers[.]load(Pki|Secrets).*" rest == null)
      (matches "LoadCredential =[[:space:]]*([^;]{0,40})" (source file)))
    ++ util.optional (match ".*EnvironmentFile =.*" (source file) != null)
    "modules/${file}: EnvironmentFile= is not a way secrets reach a unit here; load them with helpers.loadSecrets (LoadCredential=) from lib/secrets.nix";

  loaders = concatMap (file: matches "loadSecrets \"([a-z-]+)\"" (source file)) moduleFiles;

  hosts = rampartLib.secrets.perHost {inherit topology;};
  unitReaders = util.unique (concatMap (host:
    concatMap (secret: map (r: r.name) (filter (r: r.kind == "unit") hosts.${host}.${secret}.readers))
    (attrNames hosts.${host}))
  (attrNames hosts));

  readerProblems =
    map (unit: "modules: helpers.loadSecrets \"${unit}\", but lib/secrets.nix has no unit ${unit} among its readers; add it there (the docs' table follows)")
    (filter (unit: !(elem unit unitReaders)) loaders)
    ++ map (unit: "lib/secrets.nix: ${unit} reads secrets, but no module loads them with helpers.loadSecrets \"${unit}\"")
    (filter (unit: !(elem unit loaders)) unitReaders);

  placeholders = text: util.unique (matches "@([A-Z_]+)@" text);
  bootstrapProblems = host: let
    sql = rampartLib.rendered.${host}."mariadb/bootstrap.sql" or null;
    secrets = hosts.${host};
    filled = map (secret: secrets.${secret}.placeholder) (rampartLib.secrets.readBy secrets "rampart-database-bootstrap");
    found = placeholders sql;
  in
    if sql == null
    then []
    else
      map (p: "${host}: mariadb/bootstrap.sql has @${p}@, which no secret of lib/secrets.nix that rampart-database-bootstrap reads on ${host} fills; the bootstrap would send it as text")
      (filter (p: !(elem p filled)) found)
      ++ map (p: "${host}: lib/secrets.nix gives rampart-database-bootstrap the secret for @${p}@, which its bootstrap.sql never uses; remove the reader")
      (filter (p: !(elem p found)) filled);
in
  concatMap credentialProblems moduleFiles
  ++ readerProblems
  ++ concatMap bootstrapProblems (attrNames hosts)
