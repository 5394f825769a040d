//! Mozilla's server-side TLS profiles, from the very file the renderers read
//! (`lib/tls-profiles.json`): what `settings.tls.profile` makes the daemons accept is what
//! `reach check --tls-profile` judges them by.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ReachError;

const PROFILES: &str = include_str!("../../../../lib/tls-profiles.json");

/// One profile: everything an endpoint may accept, and what its certificate may be.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// What `settings.tls.profile` and `--tls-profile` call it (`intermediate`).
    #[serde(skip)]
    pub id: String,
    /// The name with Mozilla's version, for people (`intermediate 5.7`).
    #[serde(skip)]
    pub name: String,
    pub tls_versions: Vec<String>,
    /// TLS ≤ 1.2 suites, OpenSSL's names.
    pub ciphers: Vec<String>,
    /// TLS 1.3 suites.
    pub ciphersuites: Vec<String>,
    pub tls_curves: Vec<String>,
    pub certificate_types: Vec<String>,
    pub certificate_curves: Vec<String>,
    pub certificate_signatures: Vec<String>,
    pub rsa_key_size: Option<u32>,
    pub maximum_certificate_lifespan: i64,
    /// What some services accept outside the profile, knowingly (the file's `waivers`).
    #[serde(skip)]
    pub waivers: Vec<Waiver>,
}

/// A service that accepts something outside every profile because its daemon cannot be
/// told otherwise: listed, not failed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Waiver {
    /// A topology service name.
    pub service: String,
    /// The protocol, suite or group it accepts.
    pub accepts: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct File {
    version: f64,
    profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    waivers: Vec<Waiver>,
}

impl Profile {
    /// The profile called `name` in lib/tls-profiles.json.
    pub fn named(name: &str) -> Result<Profile, ReachError> {
        let file: File = serde_json::from_str(PROFILES).map_err(|e| ReachError::Argument {
            what: "built-in TLS profiles",
            got: e.to_string(),
            expected: "lib/tls-profiles.json as shipped",
        })?;
        let mut profiles = file.profiles;
        let names = profiles.keys().cloned().collect::<Vec<_>>().join(", ");
        let mut profile = profiles.remove(name).ok_or(ReachError::UnknownProfile {
            got: name.to_string(),
            expected: names,
        })?;
        profile.id = name.to_string();
        profile.name = format!("{name} {}", file.version);
        profile.waivers = file.waivers;
        Ok(profile)
    }

    /// The waiver for `service` accepting `item`, if any.
    pub fn waiver(&self, service: &str, item: &str) -> Option<&Waiver> {
        self.waivers
            .iter()
            .find(|w| w.service == service && w.accepts == item)
    }

    /// `intermediate 5.7: TLSv1.2, TLSv1.3`-style summaries of a list.
    pub fn says(&self, list: &[String]) -> String {
        format!("{}: {}", self.name, list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_profiles_load_and_an_unknown_one_lists_them() {
        let intermediate = Profile::named("intermediate").unwrap();
        assert_eq!(intermediate.name, "intermediate 5.7");
        assert_eq!(intermediate.id, "intermediate");
        assert_eq!(
            intermediate.tls_curves,
            ["X25519", "prime256v1", "secp384r1"]
        );
        assert_eq!(Profile::named("modern").unwrap().tls_versions, ["TLSv1.3"]);
        assert!(intermediate.waiver("etcdPeer", "secp521r1").is_some());
        assert!(intermediate.waiver("https", "secp521r1").is_none());
        assert_eq!(
            Profile::named("old").unwrap_err().to_string(),
            "reach: unknown TLS profile \"old\" for --tls-profile (expected one of: intermediate, modern)"
        );
    }
}
