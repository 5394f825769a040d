# checks/harness/secrets.nix: a host's units against its secrets list (lib/secrets.nix), as
# nixpkgs' module system evaluates them.
#
# Every systemd unit's LoadCredential= and EnvironmentFile= entries, and any setting that
# names a file in rampart.secretsDir, must be a secret on the host's list (`rampart.secrets`)
# given to that unit, or a file of rampart.pkiDir; and every reader on the list must read
# its secret: a unit loads it, `rampart-db` has its variable. So a unit that needs a secret
# the docs do not tell users to provision, or a listed secret nobody reads, fails here.
#
#   nix-instantiate --eval --strict --json checks/harness/secrets.nix \
#     --arg nixpkgsLib DIR --argstr host web1 [--arg modules '[ … ]']   => [ problem ]
{
  nixpkgsLib,
  host,
  modules ? [],
}: let
  lib = import (/. + "${toString nixpkgsLib}/lib");
  inherit ((import ./eval.nix {inherit lib host modules;})) config;
  inherit (config.rampart) secrets secretsDir pkiDir;
  units = config.systemd.services;

  asList = value:
    if builtins.isList value
    then value
    else [value];
  isPki = path: lib.hasPrefix "${pkiDir}/" path;
  # Every string in a value (a package counts as none: its text is not the unit's).
  strings = value:
    if builtins.isString value
    then [value]
    else if builtins.isList value
    then lib.concatMap strings value
    else if builtins.isAttrs value && !(lib.isDerivation value)
    then lib.concatMap strings (lib.attrValues value)
    else [];
  unitReads = unit: secret: lib.any (r: r.kind == "unit" && r.name == unit) (secrets.${secret}.readers or []);

  credentials = unit: let
    entries = asList (units.${unit}.serviceConfig.LoadCredential or []);
  in
    map (entry: let
      parts = lib.splitString ":" entry;
    in {
      name = lib.head parts;
      path = lib.concatStringsSep ":" (lib.tail parts);
    })
    entries;

  # What each unit loads or reads that is not a PKI file.
  unitProblems = unit: let
    loaded = lib.filter (c: !(isPki c.path)) (credentials unit);
    environmentFiles = map (lib.removePrefix "-") (asList (units.${unit}.serviceConfig.EnvironmentFile or []));
    # Any other setting naming a secret file: read behind the list's back.
    settings = builtins.removeAttrs units.${unit}.serviceConfig ["LoadCredential" "EnvironmentFile"] // units.${unit}.environment;
    direct = lib.filter (lib.hasInfix "${secretsDir}/") (strings settings);
  in
    map (c:
      if !(secrets ? ${c.name})
      then "${host}: ${unit}.service loads the credential ${c.name} (${c.path}), which lib/secrets.nix does not list for ${host} (its list: ${lib.concatStringsSep ", " (lib.attrNames secrets)}); add the unit as a reader there, so users provision it, or stop loading it"
      else if !(unitReads unit c.name)
      then "${host}: ${unit}.service loads the secret ${c.name}, but lib/secrets.nix names its readers as ${lib.concatMapStringsSep ", " (r: r.name) secrets.${c.name}.readers}; add ${unit} there or stop loading it"
      else null)
    loaded
    ++ map (file: "${host}: ${unit}.service has EnvironmentFile=${file}, which is not on the secrets list; load secrets with helpers.loadSecrets (LoadCredential=) from lib/secrets.nix")
    (lib.filter (file: !(isPki file)) environmentFiles)
    ++ map (text: "${host}: ${unit}.service names a file in ${secretsDir} directly (${text}); load it with LoadCredential= through helpers.loadSecrets, from lib/secrets.nix")
    direct;

  # Every reader on the list reads its secret.
  readerProblems = secret:
    map (reader:
      if reader.kind == "unit"
      then
        if !(units ? ${reader.name})
        then "${host}: lib/secrets.nix lists ${reader.name}.service as a reader of ${secret}, but ${host} has no such unit; remove it from the list or enable its concern"
        else if !(lib.any (c: c.name == secret) (credentials reader.name))
        then "${host}: lib/secrets.nix lists ${reader.name}.service as a reader of ${secret}, but the unit does not load it (LoadCredential=); load it with helpers.loadSecrets"
        else null
      else if !((config.rampart.database.failover.secretVariables or {}) ? ${reader.variable})
      then "${host}: lib/secrets.nix lists ${reader.name} as a reader of ${secret} (${reader.variable}), but its wrapper does not export ${reader.variable}"
      else null)
    secrets.${secret}.readers;
in
  lib.filter (p: p != null) (lib.concatMap unitProblems (lib.attrNames units) ++ lib.concatMap readerProblems (lib.attrNames secrets))
