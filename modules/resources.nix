# modules/resources.nix: per-service systemd resource limits (rampart.resources).
#
# The seed ran web server, application and database on the same hosts with no limits, so one
# runaway (a slow query filling the buffer pool, a scrape storm) starved the others. Here
# each rampart unit on a host gets a share of one memory budget and CPU/IO weights:
#   MemoryMax  = budget × memoryShare / 100   (hard limit: the kernel OOM-kills in the unit)
#   MemoryHigh = MemoryMax × highPercent / 100 (soft limit: reclaim and throttle first)
#   CPUWeight, IOWeight                        (proportional shares under contention only)
# The concern modules list the units they run in `rampart.resources.units`; only those get
# limits, so a host never grows an empty unit for a daemon it does not run.
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart.resources;

  serviceType = lib.types.submodule {
    options = {
      memoryShare = lib.mkOption {
        type = lib.types.ints.between 1 100;
        example = 40;
        description = "Percent of {option}`rampart.resources.memoryBudget` this unit may use (its `MemoryMax=`).";
      };
      cpuWeight = lib.mkOption {
        type = lib.types.ints.between 1 10000;
        default = 100;
        description = "systemd `CPUWeight=` (1–10000, systemd's default 100): the unit's share of CPU time when units compete.";
      };
      ioWeight = lib.mkOption {
        type = lib.types.ints.between 1 10000;
        default = 100;
        description = "systemd `IOWeight=` (1–10000, systemd's default 100): the unit's share of block I/O when units compete.";
      };
    };
  };

  # Defaults (each value mkDefault) for every unit a rampart module may list. The request path (haproxy, nginx,
  # the application) outweighs background work on CPU; the database gets the most memory
  # (its buffer pool) and I/O; monitoring is deliberately the first to be throttled.
  defaultServices = {
    haproxy = {
      memoryShare = 25;
      cpuWeight = 400;
    };
    nginx = {
      memoryShare = 15;
      cpuWeight = 300;
    };
    rampart-app = {
      memoryShare = 15;
      cpuWeight = 200;
    };
    mysql = {
      memoryShare = 45;
      cpuWeight = 200;
      ioWeight = 500;
    };
    # etcd's heartbeats and fsyncs decide whether the database primary keeps its leader
    # lease: under contention it must win, or a busy host fails over for nothing.
    etcd = {
      memoryShare = 8;
      cpuWeight = 500;
      ioWeight = 500;
    };
    prometheus = {
      memoryShare = 40;
      cpuWeight = 50;
    };
    alertmanager = {
      memoryShare = 5;
      cpuWeight = 50;
    };
    prometheus-node-exporter = {
      memoryShare = 3;
      cpuWeight = 20;
      ioWeight = 20;
    };
    prometheus-nginx-exporter = {
      memoryShare = 3;
      cpuWeight = 20;
      ioWeight = 20;
    };
    prometheus-mysqld-exporter = {
      memoryShare = 3;
      cpuWeight = 20;
      ioWeight = 20;
    };
    rampart-reach = {
      memoryShare = 3;
      cpuWeight = 10;
      ioWeight = 10;
    };
  };

  units = lib.unique cfg.units;
  missing = lib.filter (unit: !(cfg.services ? ${unit})) units;
  limited = lib.filter (unit: cfg.services ? ${unit}) units;
  totalShare = lib.foldl' (sum: unit: sum + cfg.services.${unit}.memoryShare) 0 limited;

  limitsOf = unit: let
    service = cfg.services.${unit};
    # Whole MiB: systemd accepts the "M" suffix, and integers keep the unit files stable.
    maxMiB = cfg.memoryBudget * service.memoryShare / 100;
  in {
    MemoryMax = "${toString maxMiB}M";
    MemoryHigh = "${toString (maxMiB * cfg.highPercent / 100)}M";
    CPUWeight = service.cpuWeight;
    IOWeight = service.ioWeight;
  };
in {
  options.rampart.resources = {
    enable = lib.mkEnableOption "per-service systemd resource limits (MemoryMax, MemoryHigh, CPUWeight, IOWeight) for the rampart units on this host";

    memoryBudget = lib.mkOption {
      type = lib.types.ints.positive;
      default = 2048;
      example = 6144;
      description = ''
        MiB of memory the rampart services on this host may use together. Leave room for
        the kernel, page cache and sshd: about three quarters of the host's RAM is a start.
      '';
    };

    highPercent = lib.mkOption {
      type = lib.types.ints.between 50 100;
      default = 85;
      description = ''
        `MemoryHigh=` as a percentage of each unit's `MemoryMax=`. Above it the kernel
        reclaims the unit's memory and slows it down, well before the hard limit kills it.
      '';
    };

    services = lib.mkOption {
      type = lib.types.attrsOf serviceType;
      default = {};
      example = lib.literalExpression ''
        {
          mysql.memoryShare = 60;
          mysql.ioWeight = 800;
        }
      '';
      description = ''
        Share and weights per systemd unit (name without `.service`). Every unit a rampart
        module runs has defaults (see {file}`modules/resources.nix`, all `mkDefault`), so a
        definition changes only the values it names.
      '';
    };

    units = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [];
      internal = true;
      description = "The units the enabled rampart concerns run on this host; each concern module adds its own.";
    };
  };

  config = lib.mkIf cfg.enable {
    rampart.resources.services = lib.mapAttrs (_: lib.mapAttrs (_: lib.mkDefault)) defaultServices;

    assertions = [
      {
        assertion = missing == [];
        message = "rampart.resources.services: no limits for ${lib.concatStringsSep ", " missing} (got entries for: ${lib.concatStringsSep ", " (lib.attrNames cfg.services)}, expected one per unit this host runs); add rampart.resources.services.<unit> = { memoryShare = …; }";
      }
      {
        assertion = totalShare <= 100;
        message = "rampart.resources.services: the memory shares of the units on ${config.networking.hostName} add up to ${toString totalShare}% (got ${lib.concatMapStringsSep ", " (unit: "${unit} ${toString cfg.services.${unit}.memoryShare}") limited}, expected at most 100); lower some memoryShare values or raise rampart.resources.memoryBudget instead";
      }
    ];

    systemd.services = lib.genAttrs limited (unit: {serviceConfig = limitsOf unit;});
  };
}
