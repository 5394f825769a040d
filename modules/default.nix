# The rampart NixOS modules, one file per concern (docs: STYLE.md section 6). Each module is
# off until a host file enables it, so importing this set changes nothing by itself.
{
  imports = [];
}
