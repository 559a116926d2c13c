//! PLACEHOLDER until the sans-io engine lands.
use crate::config::script::RawStep;
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, Clone)]
pub struct Script;
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_bytes: usize,
}
#[derive(Debug)]
pub struct Upgraded {
    pub client_early: Vec<u8>,
}
#[derive(Debug, thiserror::Error)]
#[error("upgrade failed")]
pub struct UpgradeError;
impl UpgradeError {
    pub fn reason(&self) -> &'static str {
        "upgrade_protocol"
    }
}
#[derive(Debug, thiserror::Error)]
#[error("step {index}: {message}")]
pub struct ScriptError {
    pub index: usize,
    pub message: String,
}
impl Script {
    pub fn compile(_steps: &[RawStep]) -> Result<Script, ScriptError> {
        Ok(Script)
    }
}
pub const BUILTIN: &[&str] = &[];
pub fn builtin(_name: &str, _hostname: &str) -> Option<Script> {
    None
}
pub async fn drive<C, U>(
    _s: &Script,
    _c: &mut C,
    _u: &mut U,
    _l: Limits,
) -> Result<Upgraded, UpgradeError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    Err(UpgradeError)
}
