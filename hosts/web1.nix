# hosts/web1.nix: a host with roles web and databasePrimary in hosts/topology.json.
# nginx and the application; MariaDB, whose role (primary or replica) comes from the
# topology, so this file and its twin differ only in their comment.
{
  imports = [./common.nix];

  rampart = {
    web.enable = true;
    app.enable = true;
    database.enable = true;
  };
}
