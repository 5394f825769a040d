# checks/harness/nixpkgs-units.nix: what nixpkgs 26.05's own modules set in the [Service]
# sections of the units rampart extends.
#
# rampart adds settings to nixpkgs' units (LoadCredential=, ReadWritePaths=, the resource
# limits). A setting both define must be equal, or lists on both sides (systemd's unitOption
# merge), or NixOS refuses to build. These definitions reproduce the single-valued settings
# of the nixpkgs modules (source files as in ./nixpkgs-options.nix), enabled as those are,
# so the harness meets the same conflicts. Only values, no behaviour.
{
  config,
  lib,
  ...
}: let
  inherit (config) services;
  exporter = name:
    lib.mkIf services.prometheus.exporters.${name}.enable {
      # exporters.nix, mkExporterConf
      "prometheus-${name}-exporter".serviceConfig = {
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        NoNewPrivileges = true;
        ProtectControlGroups = true;
        ProtectHome = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        RemoveIPC = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        SystemCallArchitectures = "native";
        UMask = "0077";
      };
    };
in {
  config.systemd.services = lib.mkMerge [
    # services/networking/haproxy.nix
    (lib.mkIf services.haproxy.enable {
      haproxy.serviceConfig = {
        User = services.haproxy.user;
        Group = services.haproxy.group;
        Type = "notify";
        KillMode = "mixed";
        SuccessExitStatus = "143";
        Restart = "always";
        RuntimeDirectory = "haproxy";
        NoNewPrivileges = true;
        ProtectHome = true;
        ProtectSystem = "strict";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        AmbientCapabilities = "CAP_NET_BIND_SERVICE";
      };
    })
    # services/web-servers/nginx/default.nix
    (lib.mkIf services.nginx.enable {
      nginx.serviceConfig = {
        Restart = "always";
        RestartSec = "10s";
        User = "nginx";
        Group = "nginx";
        RuntimeDirectory = "nginx";
        RuntimeDirectoryMode = "0750";
        CacheDirectory = "nginx";
        LogsDirectory = "nginx";
        UMask = "0027";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        PrivateTmp = true;
        PrivateDevices = true;
        RemoveIPC = true;
        PrivateMounts = true;
      };
    })
    # services/databases/mysql.nix (Restart= was "on-abort" until 25.11)
    (lib.mkIf services.mysql.enable {
      mysql.serviceConfig = {
        Type = "notify";
        Restart = "on-abnormal";
        RestartSec = "5s";
        User = "mysql";
        Group = "mysql";
        RuntimeDirectory = "mysqld";
        RuntimeDirectoryMode = "0755";
        CapabilityBoundingSet = "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateMounts = true;
        SystemCallArchitectures = "native";
      };
    })
    # services/monitoring/prometheus/default.nix
    (lib.mkIf services.prometheus.enable {
      prometheus.serviceConfig = {
        User = "prometheus";
        Restart = "always";
        RuntimeDirectory = "prometheus";
        RuntimeDirectoryMode = "0700";
        StateDirectoryMode = "0700";
        ProtectSystem = "full";
        PrivateUsers = true;
      };
    })
    # services/monitoring/prometheus/alertmanager.nix
    (lib.mkIf services.prometheus.alertmanager.enable {
      alertmanager.serviceConfig = {
        Restart = "always";
        StateDirectory = "alertmanager";
        DynamicUser = true;
        WorkingDirectory = "/tmp";
      };
    })
    # services/misc/etcd.nix
    (lib.mkIf services.etcd.enable {
      etcd.serviceConfig = {
        Type = "notify";
        Restart = "always";
        RestartSec = "30s";
        User = "etcd";
        LimitNOFILE = 40000;
      };
    })
    (exporter "node")
    (exporter "nginx")
    (exporter "mysqld")
  ];
}
