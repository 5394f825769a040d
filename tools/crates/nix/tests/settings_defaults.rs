//! The tools' default runtime paths (`rampart_cli::paths`) are the renderers' defaults
//! (`lib/settings.nix`), so a flag left at its default finds what the modules put there.

use std::path::Path;

#[test]
fn the_tools_default_paths_are_the_renderers_defaults() {
    let flake = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let settings: serde_json::Value =
        rampart_nix::eval_json(&flake, "lib.settings", &[]).expect("nix eval .#lib.settings");
    assert_eq!(settings["pkiDir"], rampart_cli::paths::PKI_DIR);
    assert_eq!(settings["secretsDir"], rampart_cli::paths::SECRETS_DIR);
}
