//! Where a deployment keeps its runtime files, as the tools' defaults. The renderers'
//! defaults (`lib/settings.nix`) say the same; a test in rampart-nix holds both to it.

/// `settings.pkiDir`: certificates and keys under the names of docs/contracts.md.
pub const PKI_DIR: &str = "/var/lib/rampart/pki";

/// The CA certificate in [`PKI_DIR`].
pub const CA_CERT: &str = "/var/lib/rampart/pki/ca.pem";

/// `settings.secretsDir`: one secret per file.
pub const SECRETS_DIR: &str = "/run/secrets/rampart";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_certificate_is_in_the_pki_directory() {
        assert_eq!(CA_CERT, format!("{PKI_DIR}/ca.pem"));
    }
}
