//! PLACEHOLDER until the upgrade engine lands.
use serde::Deserialize;
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub send: Option<String>,
    pub expect: Option<String>,
}
