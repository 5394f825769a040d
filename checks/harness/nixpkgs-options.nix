# checks/harness/nixpkgs-options.nix: every nixpkgs option rampart sets (or reads), with
# its type in NixOS 26.05: the record of what rampart relies on in nixpkgs.
#
# The module harness (./default.nix) evaluates the rampart modules and hosts against these
# declarations instead of nixpkgs' own modules, which this machine cannot evaluate. A
# misspelt option then fails as "The option `…' does not exist", a wrong value as "is not
# of type …". Only declarations live here, no implementation: what nixpkgs' modules *do*
# with the values is outside the harness (the three-VM test covers it).
#
# Keep it exact. When a module starts setting a new nixpkgs option, declare it here with
# the type of its 26.05 source file, named in the comment above it; the paths are under
# nixos/ of NixOS/nixpkgs (branch nixos-26.05, the flake's pin). docs/nixos.md ("The
# NixOS release") says what changed from 25.05 and how each declaration was checked.
{lib, ...}: let
  inherit (lib) mkOption types;

  # Name and type as declared; defaults only where rampart reads the value.
  option = type: attrs: mkOption ({inherit type;} // attrs);
  enable = option types.bool {default = false;};

  # lib/systemd-lib.nix: unitNameType.
  unitName = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  unitNames = option (types.listOf unitName) {default = [];};

  # lib/systemd-unit-options.nix: unitOption. A setting defined several times must be
  # lists everywhere (concatenated: a repeatable directive) or equal everywhere.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs: let
      values = map (def: def.value) (lib.filterOverrides defs);
    in
      if lib.all builtins.isList values
      then lib.concatLists values
      else if lib.any builtins.isList values
      then throw "The definitions of the systemd setting ${lib.showOption loc} mix lists and non-lists: ${lib.options.showDefs defs}"
      else lib.mergeEqualOption loc (lib.filterOverrides defs);
  };
  unitSection = option (types.attrsOf unitOption) {default = {};};

  # lib/systemd-unit-options.nix: checkService, the values of Type= and Restart= systemd knows.
  serviceSection = option (types.addCheck (types.attrsOf unitOption) (section:
    lib.elem (section.Type or "simple") ["exec" "simple" "forking" "oneshot" "dbus" "notify" "notify-reload" "idle"]
    && lib.elem (section.Restart or "no") ["no" "on-success" "on-failure" "on-abnormal" "on-watchdog" "on-abort" "always"])) {default = {};};

  # lib/systemd-unit-options.nix: commonUnitOptions (the subset rampart sets).
  unitCommon = {
    description = option types.singleLineStr {default = "";};
    after = unitNames;
    before = unitNames;
    wants = unitNames;
    requires = unitNames;
    wantedBy = unitNames;
    requiredBy = unitNames;
    unitConfig = unitSection;
  };

  # modules/services/monitoring/prometheus/exporters.nix: mkExporterOpts, the options every
  # exporter has, plus the exporter's own `extraOpts` (exporters/<name>.nix).
  exporter = port: extraOpts:
    {
      enable = enable;
      port = option types.port {default = port;};
      listenAddress = option types.str {default = "0.0.0.0";};
      extraFlags = option (types.listOf types.str) {default = [];};
    }
    // extraOpts;

  # pkgs/pkgs-lib/formats.nix: ini { listsAsDuplicateKeys = true; }, the type of
  # services.mysql.settings: sections of keys, each an atom or a list of atoms.
  iniAtom = types.nullOr (types.oneOf [types.bool types.int types.float types.str]);
in {
  options = {
    # modules/misc/assertions.nix
    assertions = option (types.listOf types.unspecified) {default = [];};
    warnings = option (types.listOf types.str) {default = [];};

    # modules/tasks/network-interfaces.nix
    networking.hostName = option (types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$") {default = "nixos";};
    networking.interfaces = option (types.attrsOf (types.submodule {
      options.ipv4.addresses = option (types.listOf (types.submodule {
        options = {
          address = option types.str {};
          prefixLength = option (types.addCheck types.int (n: n >= 0 && n <= 32)) {};
        };
      })) {default = [];};
    })) {default = {};};

    # modules/services/networking/firewall.nix
    networking.firewall.enable = option types.bool {default = true;};

    # modules/services/networking/nftables.nix
    networking.nftables.enable = enable;
    networking.nftables.tables = option (types.attrsOf (types.submodule ({name, ...}: {
      options = {
        enable = option types.bool {default = true;};
        name = option types.str {default = name;};
        content = option types.lines {};
        family = option (types.enum ["ip" "ip6" "inet" "arp" "bridge" "netdev"]) {};
      };
    }))) {default = {};};

    # modules/services/networking/haproxy.nix
    services.haproxy = {
      enable = enable;
      user = option types.str {default = "haproxy";};
      group = option types.str {default = "haproxy";};
      config = option (types.nullOr types.lines) {default = null;};
    };

    # modules/services/web-servers/nginx/default.nix. virtualHosts is
    # attrsOf (submodule vhost-options.nix) with default { localhost = { }; }; rampart sets
    # it to { } only, so the vhost options are not declared here.
    services.nginx = {
      enable = enable;
      user = option types.str {default = "nginx";};
      group = option types.str {default = "nginx";};
      appendConfig = option types.lines {default = "";};
      eventsConfig = option types.lines {default = "";};
      commonHttpConfig = option types.lines {default = "";};
      appendHttpConfig = option types.lines {default = "";};
      virtualHosts = option (types.attrsOf (types.submodule {})) {default = {localhost = {};};};
      # The configuration at /etc/nginx/nginx.conf, reloaded by nginx-config-reload.
      enableReload = option types.bool {default = false;};
    };

    # modules/services/databases/mysql.nix (package has no default there)
    services.mysql = {
      enable = enable;
      package = option types.package {};
      settings = option (types.attrsOf (types.attrsOf (types.either iniAtom (types.listOf iniAtom)))) {default = {};};
    };

    # modules/services/monitoring/prometheus/default.nix (listenAddress takes no port)
    services.prometheus = {
      enable = enable;
      listenAddress = option types.str {default = "0.0.0.0";};
      port = option types.port {default = 9090;};
      configText = option (types.nullOr types.lines) {default = null;};
      retentionTime = option (types.nullOr types.str) {default = null;};

      # modules/services/monitoring/prometheus/alertmanager.nix
      alertmanager = {
        enable = enable;
        listenAddress = option types.str {default = "";};
        port = option types.port {default = 9093;};
        configText = option (types.nullOr types.lines) {default = null;};
        extraFlags = option (types.listOf types.str) {default = [];};
      };

      extraFlags = option (types.listOf types.str) {default = [];};

      exporters = {
        # exporters/node.nix
        node = exporter 9100 {};
        # exporters/nginx.nix
        nginx = exporter 9113 {
          scrapeUri = option types.str {default = "http://localhost/nginx_status";};
        };
        # exporters/mysqld.nix (configFile has no default there)
        mysqld = exporter 9104 {
          configFile = option types.path {};
        };
      };
    };

    # modules/services/misc/etcd.nix (the options rampart sets; the peer files default to
    # the client ones there, rampart sets them all)
    services.etcd = let
      files = option (types.nullOr types.path) {default = null;};
      urls = option (types.listOf types.str) {};
    in {
      enable = enable;
      package = option types.package {};
      name = option types.str {};
      dataDir = option types.path {default = "/var/lib/etcd";};
      discovery = option types.str {default = "";};
      advertiseClientUrls = urls;
      listenClientUrls = urls;
      listenPeerUrls = urls;
      initialAdvertisePeerUrls = urls;
      initialCluster = urls;
      initialClusterState = option (types.enum ["new" "existing"]) {default = "new";};
      initialClusterToken = option types.str {default = "etcd-cluster";};
      clientCertAuth = option types.bool {default = false;};
      peerClientCertAuth = option types.bool {default = false;};
      certFile = files;
      keyFile = files;
      trustedCaFile = files;
      peerCertFile = files;
      peerKeyFile = files;
      peerTrustedCaFile = files;
      extraConf = option (types.attrsOf types.str) {default = {};};
      openFirewall = option types.bool {default = false;};
    };

    # modules/services/networking/ssh/sshd.nix (settings is a freeform submodule; these
    # are declared in it)
    services.openssh = {
      enable = enable;
      ports = option (types.listOf types.port) {default = [22];};
      listenAddresses = option (types.listOf (types.submodule {
        options = {
          addr = option (types.nullOr types.str) {default = null;};
          port = option (types.nullOr types.port) {default = null;};
        };
      })) {default = [];};
      settings = {
        PasswordAuthentication = option (types.nullOr types.bool) {default = true;};
        KbdInteractiveAuthentication = option (types.nullOr types.bool) {default = true;};
        PermitRootLogin = option (types.nullOr (types.enum ["yes" "without-password" "prohibit-password" "forced-commands-only" "no"])) {default = "prohibit-password";};
        UsePAM = option (types.nullOr types.bool) {default = true;};
        X11Forwarding = option (types.nullOr types.bool) {default = false;};
      };
    };

    # modules/system/boot/systemd.nix with lib/systemd-unit-options.nix
    systemd.services = option (types.attrsOf (types.submodule {
      options =
        unitCommon
        // {
          # lib/systemd-unit-options.nix: serviceOptions
          environment = option (types.attrsOf (types.nullOr (types.oneOf [types.str types.path types.package]))) {default = {};};
          serviceConfig = serviceSection;
          path = option (types.listOf (types.oneOf [types.package types.str])) {default = [];};
          # stage2ServiceOptions: what switch-to-configuration does with a changed unit.
          reloadIfChanged = option types.bool {default = false;};
          stopIfChanged = option types.bool {default = true;};
        };
    })) {default = {};};
    # lib/systemd-unit-options.nix: socketOptions (stage 2)
    systemd.sockets = option (types.attrsOf (types.submodule {
      options =
        unitCommon
        // {
          listenStreams = option (types.listOf types.str) {default = [];};
          socketConfig = unitSection;
        };
    })) {default = {};};
    systemd.timers = option (types.attrsOf (types.submodule {
      options =
        unitCommon
        // {
          timerConfig = unitSection;
        };
    })) {default = {};};

    # modules/system/boot/systemd/tmpfiles.nix
    systemd.tmpfiles.rules = option (types.listOf types.str) {default = [];};

    # modules/system/etc/etc.nix
    environment.etc = option (types.attrsOf (types.submodule {
      options.source = option types.path {};
    })) {default = {};};
    # modules/config/system-path.nix
    environment.systemPackages = option (types.listOf types.package) {default = [];};

    # modules/misc/version.nix
    system.stateVersion = option types.str {};

    # modules/tasks/filesystems.nix (device and fsType of each file system). fsType has
    # had no default since 26.05 (it was "auto"): every file system must name its type.
    fileSystems = option (types.attrsOf (types.submodule {
      options = {
        device = option (types.nullOr types.nonEmptyStr) {default = null;};
        fsType = option types.nonEmptyStr {};
      };
    })) {default = {};};

    # modules/system/boot/loader/grub/grub.nix
    boot.loader.grub.devices = option (types.listOf types.str) {default = [];};
  };
}
