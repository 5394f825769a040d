/*
lib/render/sshd.nix: OpenSSH on every host, for administrators.

sshd listens on the host's topology address and `ssh` port only: the firewall admits the
port from `adminNetworks` alone, and no other address of the host should answer. Keys
only. Root may log in with a key (`prohibit-password`): the documented deploy is
`nixos-rebuild --target-host root@<host>`, and rampart defines no other account. PAM stays
on: NixOS locks root's password (`!`), and without PAM OpenSSH refuses every login to a
locked account, keys included; with PAM the account stage passes and no password is ever
asked (password and keyboard-interactive authentication are off).

`settings` is what the NixOS module hands to nixpkgs' services.openssh (`listenAddresses`,
`ports`, `settings`); `ssh/sshd_config` writes the same values as a whole file, with the
host key and pid file under the settings' directories, for a host that is not NixOS (the
lab).

# Type

```
sshd :: { topology; settings; host; } -> { "ssh/sshd_config" = string; } (or { } without an `ssh` service)
sshd.settings :: { topology; settings; host; } -> { listenAddresses = [ { addr; port; } ]; ports = [ port ]; settings = { <keyword> = bool | string; }; } (or { })
sshd.line :: string -> (bool | string) -> string   (one sshd_config line)
```

# Examples

```nix
(sshd.settings { inherit topology; settings = { }; host = "lb"; }).listenAddresses
=> [ { addr = "10.42.0.10"; port = 22; } ]
```
*/
let
  inherit (builtins) attrNames isBool;
  util = import ../util.nix;
  common = import ./common.nix;
  topologyLib = import ../topology.nix;
  inherit (util) concatLines concatMapStrings;

  sshd = topology: self: let
    port = topologyLib.servicePort topology "ssh";
  in {
    listenAddresses = [
      {
        addr = self.address;
        inherit port;
      }
    ];
    ports = [port];
    # sshd_config keywords, as nixpkgs' services.openssh.settings takes them.
    settings = {
      PermitRootLogin = "prohibit-password";
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      UsePAM = true;
      X11Forwarding = false;
    };
  };

  # One sshd_config line, as nixpkgs writes a setting (booleans as yes/no).
  line = key: v: "${key} ${
    if isBool v
    then
      (
        if v
        then "yes"
        else "no"
      )
    else toString v
  }";

  files = topology: s: self: let
    d = sshd topology self;
  in {
    "ssh/sshd_config" =
      common.header {
        what = "ssh/sshd_config";
        host = self;
        renderer = "sshd";
      }
      + concatLines [
        "#"
        "# On a host that is not NixOS (there services.openssh writes it from the same values)."
        "# The host key is made once: ssh-keygen -t ed25519 -N '' -f <HostKey>."
      ]
      + concatMapStrings (l: "ListenAddress ${l.addr}:${toString l.port}\n") d.listenAddresses
      + concatMapStrings (key: line key d.settings.${key} + "\n") (attrNames d.settings)
      + concatLines [
        "HostKey ${s.stateDir}/ssh/ssh_host_ed25519_key"
        "PidFile ${s.runDir}/sshd.pid"
      ];
  };

  # Every host, when the topology has an `ssh` service (without one, no host runs sshd).
  renderer = output: args:
    if args.topology.services ? ssh
    then
      common.renderer {
        component = "sshd";
        appliesTo = _: true;
        problems = _: common.directories;
        files = output;
      }
      args
    else {};
in {
  __functor = _: renderer files;
  settings = renderer (topology: _: self: sshd topology self);
  inherit line;
}
