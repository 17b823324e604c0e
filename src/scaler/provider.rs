//! The seam between a scaling group and what runs its instances.

use crate::config::LaunchTemplate;
use std::net::{IpAddr, SocketAddr};

/// Why an instance could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// Program.
        program: String,
        /// Cause.
        source: std::io::Error,
    },
    /// No free port on the instance's address.
    #[error("no free port on {addr}: {source}")]
    Port {
        /// Address.
        addr: IpAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The provider refused (fakes, quotas).
    #[error("{0}")]
    Refused(String),
}

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// Instance id (unique in the process).
    pub id: String,
    /// Address to listen on.
    pub address: IpAddr,
    /// Region of the scaling group.
    pub region: String,
    /// The template.
    pub template: LaunchTemplate,
}

/// A launched instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    /// Where it serves.
    pub addr: SocketAddr,
    /// Its process id, when it is a local process.
    pub pid: Option<u32>,
}

/// Launches, watches and terminates instances (local processes, containers, fakes).
pub trait Provider: Send + Sync + 'static {
    /// Starts an instance.
    fn launch(
        &self,
        request: &LaunchRequest,
    ) -> impl Future<Output = Result<Launched, ProviderError>> + Send;

    /// Stops an instance and waits until it is gone (bounded).
    fn terminate(&self, id: &str) -> impl Future<Output = ()> + Send;

    /// False once the instance has exited (crashed or was killed).
    fn is_running(&self, id: &str) -> bool;

    /// True once the instance accepts traffic at `addr`.
    fn is_ready(&self, id: &str, addr: SocketAddr) -> impl Future<Output = bool> + Send;

    /// CPU use since the previous call (the first call: since launch), in percent of one core.
    fn cpu(&self, id: &str) -> Option<f64>;
}
