# checks/harness/verdict.nix: what the harness reports about one lib.evalModules result,
# the same way for a whole host (./default.nix) and for one module file
# (./single-modules.nix).
#
#   failedAssertions  the messages of the failed `assertions`
#   evaluated         every option some module defines, forced to the bottom: that is
#                     what type-checks a value. false when an assertion failed, as NixOS
#                     stops there too.
#   defined           those options
#
# Options nobody defines are left alone, as in NixOS (some have no default), and so is
# `_module`: it holds the module system's own arguments, `config` among them. NixOS never
# forces it, and with nixpkgs 26.05's lib (whose submodule types default to their empty
# value) forcing `_module.args.moduleType` evaluates every option, defined or not.
#
# Type: { lib } -> evalModules result -> { failedAssertions; evaluated; defined; }
{lib}: eval: let
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
  defined = lib.filter (opt: opt.isDefined && lib.head opt.loc != "_module") (lib.collect lib.isOption eval.options);
in {
  inherit failedAssertions defined;
  evaluated = failedAssertions == [] && builtins.deepSeq (map (opt: opt.value) defined) true;
}
