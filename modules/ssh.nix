# modules/ssh.nix: OpenSSH for administrators (rampart.ssh).
#
# lib/render/sshd.nix decides the values, and the lab runs sshd with the same ones: sshd
# listens on the host's topology address and `ssh` port only (the firewall admits that port
# from the topology's adminNetworks alone), keys only, root by key (the deploy path:
# `nixos-rebuild --target-host root@<host>`), PAM on (NixOS locks root's password, and
# without PAM OpenSSH refuses a locked account even with a key).
{
  config,
  lib,
  ...
}: let
  cfg = config.rampart.ssh;
  helpers = import ./lib.nix {inherit config lib;};
  daemon = helpers.daemon "sshd" {};
in {
  imports = [./topology.nix];

  options.rampart.ssh = {
    enable = lib.mkEnableOption "OpenSSH for administrators, on this host's topology address only, keys only";
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = helpers.host == null || config.rampart.topology.services ? ssh;
        message = "rampart.ssh.enable: rampart.topology has no service \"ssh\" (got services: ${lib.concatStringsSep ", " (lib.attrNames config.rampart.topology.services)}); add services.ssh to hosts/topology.json, with a policy rule that admits it from adminNetworks";
      }
    ];

    services.openssh = {
      enable = true;
      inherit (daemon.nixos."services.openssh") listenAddresses ports;
      settings = {inherit (daemon.nixos."services.openssh".settings) PermitRootLogin PasswordAuthentication KbdInteractiveAuthentication UsePAM X11Forwarding;};
    };

    # The listen address is the topology's: sshd cannot bind it before the interface has
    # it (nixpkgs' listenAddresses documentation asks for this).
    systemd.services.sshd = {
      wants = ["network-online.target"];
      after = ["network-online.target"];
    };

    rampart.daemons.sshd = daemon;
  };
}
