//! The topology as written: serde structs that mirror the JSON one to one. Strings stay
//! strings here so that the semantic pass can say what was wrong with them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTopology {
    pub version: i64,
    pub name: String,
    pub domain: String,
    pub network: RawNetwork,
    pub admin_networks: Vec<String>,
    pub public_names: Vec<String>,
    pub hosts: Vec<RawHost>,
    pub services: BTreeMap<String, RawService>,
    pub policy: Vec<RawRule>,
    pub monitoring: RawMonitoring,
    pub lab: Option<RawLab>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub cidr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub name: String,
    pub address: String,
    pub roles: Vec<String>,
}

impl RawHost {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.name())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub port: i64,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub service: String,
    pub to: Vec<String>,
    pub from: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawMonitoring {
    pub qps_threshold: serde_json::Number,
    pub alert_receiver: RawReceiver,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawReceiver {
    pub name: String,
    pub webhook_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLab {
    pub outside: String,
    pub admin: Option<String>,
}
