//! The seam between a scaling group and what runs its instances.

use crate::config::{LaunchTemplate, ProviderKind};
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
    /// Scaling group.
    pub group: String,
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

/// Both real providers behind one: each launch goes to the one its template names.
pub struct Providers {
    process: super::process::ProcessProvider,
    docker: super::docker::DockerProvider,
    kinds: std::sync::Mutex<std::collections::HashMap<String, ProviderKind>>,
}

impl Providers {
    /// Local processes, and containers of the daemon behind `engine`.
    pub fn new(engine: super::docker_api::Engine) -> Providers {
        Providers {
            process: super::process::ProcessProvider::new(),
            docker: super::docker::DockerProvider::new(engine),
            kinds: Default::default(),
        }
    }

    fn kind(&self, id: &str) -> Option<ProviderKind> {
        self.kinds.lock().expect("not poisoned").get(id).copied()
    }
}

impl Provider for Providers {
    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ProviderError> {
        let kind = request.template.provider;
        let launched = match kind {
            ProviderKind::Process => self.process.launch(request).await?,
            ProviderKind::Docker => self.docker.launch(request).await?,
        };
        let mut kinds = self.kinds.lock().expect("not poisoned");
        kinds.insert(request.id.clone(), kind);
        Ok(launched)
    }

    async fn terminate(&self, id: &str) {
        match self.kind(id) {
            Some(ProviderKind::Process) => self.process.terminate(id).await,
            Some(ProviderKind::Docker) => self.docker.terminate(id).await,
            None => {}
        }
        self.kinds.lock().expect("not poisoned").remove(id);
    }

    fn is_running(&self, id: &str) -> bool {
        match self.kind(id) {
            Some(ProviderKind::Process) => self.process.is_running(id),
            Some(ProviderKind::Docker) => self.docker.is_running(id),
            None => false,
        }
    }

    async fn is_ready(&self, id: &str, addr: SocketAddr) -> bool {
        match self.kind(id) {
            Some(ProviderKind::Process) => self.process.is_ready(id, addr).await,
            Some(ProviderKind::Docker) => self.docker.is_ready(id, addr).await,
            None => false,
        }
    }

    fn cpu(&self, id: &str) -> Option<f64> {
        match self.kind(id)? {
            ProviderKind::Process => self.process.cpu(id),
            ProviderKind::Docker => self.docker.cpu(id),
        }
    }
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
