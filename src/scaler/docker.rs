//! The `docker` provider: each instance is a container created from the launch template's
//! image through the Docker Engine API ([`super::docker_api`]), labelled
//! `roundhouse.group=<group>` and `roundhouse.instance=<id>`, with the template's environment
//! and command, on its network, and its `container_port` published on a free port of the
//! instance's address (the address the balancer reaches) — or, with `publish = false`, not
//! published: the instance is then its address on the network, for a balancer that runs in
//! a container on the same network. A task per container polls whether
//! it runs and its CPU time (`/containers/ID/stats?stream=false`).

use super::docker_api::{DockerError, Engine};
use super::provider::{LaunchRequest, Launched, Provider, ProviderError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Time a stopped container gets before the daemon kills it.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How often a container's state and CPU time are read.
pub const POLL: Duration = Duration::from_secs(1);
/// Label naming the scaling group of a container.
pub const GROUP_LABEL: &str = "roundhouse.group";
/// Label naming the instance id of a container.
pub const INSTANCE_LABEL: &str = "roundhouse.instance";

#[derive(Debug, Default)]
struct Polled {
    running: bool,
    /// (time, CPU nanoseconds) of the latest poll.
    latest: Option<(Instant, u64)>,
    /// The same at the previous `cpu` call.
    read: Option<(Instant, u64)>,
}

struct Entry {
    container: String,
    polled: Arc<Mutex<Polled>>,
    stop: CancellationToken,
}

/// Launches instances as containers.
pub struct DockerProvider {
    engine: Engine,
    instances: Mutex<HashMap<String, Entry>>,
}

impl DockerProvider {
    /// A provider using the daemon behind `engine`.
    pub fn new(engine: Engine) -> DockerProvider {
        DockerProvider {
            engine,
            instances: Mutex::new(HashMap::new()),
        }
    }

    /// The `/containers/create` body for `request`, publishing on `host_port` (unless the
    /// template publishes nothing).
    pub fn spec(request: &LaunchRequest, host_port: u16) -> Value {
        let t = &request.template;
        let port = format!("{}/tcp", t.container_port);
        let cmd: Vec<String> = t
            .command
            .iter()
            .map(|a| {
                a.replace("{address}", "0.0.0.0")
                    .replace("{port}", &t.container_port.to_string())
                    .replace("{id}", &request.id)
                    .replace("{region}", &request.region)
            })
            .collect();
        let env: Vec<String> = t.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut spec = json!({
            "Image": t.image,
            "Env": env,
            "Labels": { GROUP_LABEL: request.group, INSTANCE_LABEL: request.id },
            "ExposedPorts": { port.clone(): {} },
            "HostConfig": { "NetworkMode": t.network },
        });
        if t.publish {
            spec["HostConfig"]["PortBindings"] = json!({
                port: [{ "HostIp": request.address.to_string(), "HostPort": host_port.to_string() }]
            });
        }
        if !cmd.is_empty() {
            spec["Cmd"] = json!(cmd);
        }
        spec
    }

    async fn create_and_start(
        &self,
        request: &LaunchRequest,
        port: u16,
    ) -> Result<String, DockerError> {
        let spec = DockerProvider::spec(request, port);
        let id = self.engine.create(&request.id, &spec).await?;
        if let Err(e) = self.engine.start(&id).await {
            let _ = self.engine.remove(&id).await;
            return Err(e);
        }
        Ok(id)
    }
}

impl DockerProvider {
    /// Starts the container without publishing; it is reached at its address on the
    /// template's network.
    async fn launch_on_network(&self, request: &LaunchRequest) -> Result<Launched, ProviderError> {
        let container = self
            .create_and_start(request, 0)
            .await
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        let network = &request.template.network;
        let ip = match self.engine.address_on(&container, network).await {
            Ok(ip) => ip,
            Err(e) => {
                let _ = self.engine.remove(&container).await;
                return Err(ProviderError::Refused(e.to_string()));
            }
        };
        self.watch(request, container);
        Ok(Launched {
            addr: SocketAddr::new(ip, request.template.container_port),
            pid: None,
        })
    }

    /// Polls the started `container` of `request` until it is terminated.
    fn watch(&self, request: &LaunchRequest, container: String) {
        let polled = Arc::new(Mutex::new(Polled {
            running: true,
            ..Polled::default()
        }));
        let stop = CancellationToken::new();
        tokio::spawn(poll(
            self.engine.clone(),
            container.clone(),
            polled.clone(),
            stop.clone(),
        ));
        let entry = Entry {
            container,
            polled,
            stop,
        };
        let mut all = self.instances.lock().expect("not poisoned");
        all.insert(request.id.clone(), entry);
    }
}

/// Reads the container's state and CPU time every [`POLL`] until `stop`.
async fn poll(
    engine: Engine,
    container: String,
    polled: Arc<Mutex<Polled>>,
    stop: CancellationToken,
) {
    loop {
        let running = engine.running(&container).await;
        let cpu = engine.cpu_nanos(&container).await.ok();
        {
            let mut p = polled.lock().expect("not poisoned");
            match running {
                Ok(r) => p.running = r,
                Err(DockerError::Api { .. }) => p.running = false, // gone
                Err(_) => {}                                       // daemon busy: keep the last
            }
            if let Some(n) = cpu {
                p.latest = Some((Instant::now(), n));
                p.read.get_or_insert((Instant::now(), n));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = stop.cancelled() => return,
        }
    }
}

impl Provider for DockerProvider {
    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ProviderError> {
        if !request.template.publish {
            return self.launch_on_network(request).await;
        }
        // The template's port, or a free one, on the instance's address for the daemon to
        // publish on.
        let port = request.template.port;
        let probe = std::net::TcpListener::bind((request.address, port)).map_err(|source| {
            ProviderError::Port {
                addr: request.address,
                source,
            }
        })?;
        let addr = probe.local_addr().map_err(|source| ProviderError::Port {
            addr: request.address,
            source,
        })?;
        drop(probe);
        let container = self
            .create_and_start(request, addr.port())
            .await
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        self.watch(request, container);
        Ok(Launched { addr, pid: None })
    }

    async fn terminate(&self, id: &str) {
        let entry = self.instances.lock().expect("not poisoned").remove(id);
        let Some(entry) = entry else { return };
        entry.stop.cancel();
        if let Err(e) = self.engine.stop(&entry.container, STOP_GRACE).await {
            tracing::debug!(instance = %id, "stop: {e}");
        }
        if let Err(e) = self.engine.remove(&entry.container).await {
            tracing::warn!(instance = %id, container = %entry.container, "cannot remove the container: {e}");
        }
    }

    fn is_running(&self, id: &str) -> bool {
        let all = self.instances.lock().expect("not poisoned");
        all.get(id)
            .is_some_and(|e| e.polled.lock().expect("not poisoned").running)
    }

    async fn is_ready(&self, id: &str, addr: SocketAddr) -> bool {
        // The daemon's proxy accepts connections before the container listens: ask for an
        // answer (any bytes), not only a connection.
        if !self.is_running(id) {
            return false;
        }
        answers(addr).await
    }

    fn cpu(&self, id: &str) -> Option<f64> {
        let all = self.instances.lock().expect("not poisoned");
        let mut p = all.get(id)?.polled.lock().expect("not poisoned");
        let (now, total) = p.latest?;
        let (then, before) = p.read.replace((now, total))?;
        let wall = now.duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        Some(100.0 * total.saturating_sub(before) as f64 / 1e9 / wall)
    }
}

/// True when something at `addr` answers a `HEAD /` within half a second.
async fn answers(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"HEAD / HTTP/1.1\r\nHost: instance\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).await.ok()?;
        (n > 0).then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), exchange).await,
        Ok(Some(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LaunchTemplate, ProviderKind};

    #[test]
    fn the_create_body_names_image_labels_env_command_and_port() {
        let request = LaunchRequest {
            id: "web-3".into(),
            group: "web".into(),
            address: "127.0.0.1".parse().unwrap(),
            region: "us-east".into(),
            template: LaunchTemplate {
                provider: ProviderKind::Docker,
                version: 1,
                command: vec![
                    "backend".into(),
                    "--listen".into(),
                    "{address}:{port}".into(),
                ],
                addresses: vec!["127.0.0.1".parse().unwrap()],
                env: vec![("RUST_LOG".into(), "info".into())],
                image: "roundhouse:dev".into(),
                network: "bridge".into(),
                container_port: 8080,
                publish: true,
                port: 0,
            },
        };
        let spec = DockerProvider::spec(&request, 41000);
        assert_eq!(spec["Image"], "roundhouse:dev");
        assert_eq!(spec["Cmd"], json!(["backend", "--listen", "0.0.0.0:8080"]));
        assert_eq!(spec["Env"], json!(["RUST_LOG=info"]));
        assert_eq!(spec["Labels"][GROUP_LABEL], "web");
        assert_eq!(spec["Labels"][INSTANCE_LABEL], "web-3");
        assert_eq!(spec["ExposedPorts"], json!({ "8080/tcp": {} }));
        assert_eq!(
            spec["HostConfig"]["PortBindings"]["8080/tcp"],
            json!([{ "HostIp": "127.0.0.1", "HostPort": "41000" }])
        );
        assert_eq!(spec["HostConfig"]["NetworkMode"], "bridge");
    }

    #[test]
    fn an_unpublished_container_gets_no_port_bindings() {
        let mut request = LaunchRequest {
            id: "web-1".into(),
            group: "web".into(),
            address: "127.0.0.1".parse().unwrap(),
            region: "eu-west".into(),
            template: LaunchTemplate {
                provider: ProviderKind::Docker,
                version: 1,
                command: vec![],
                addresses: vec!["127.0.0.1".parse().unwrap()],
                env: vec![],
                image: "roundhouse:dev".into(),
                network: "lab-eu-west".into(),
                container_port: 8080,
                port: 0,
                publish: false,
            },
        };
        let spec = DockerProvider::spec(&request, 0);
        assert!(spec["HostConfig"].get("PortBindings").is_none(), "{spec}");
        assert_eq!(spec["HostConfig"]["NetworkMode"], "lab-eu-west");
        assert_eq!(spec["ExposedPorts"], json!({ "8080/tcp": {} }));
        assert!(
            spec.get("Cmd").is_none(),
            "the image's entrypoint and command"
        );
        request.template.publish = true;
        let spec = DockerProvider::spec(&request, 41001);
        assert_eq!(
            spec["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"],
            "41001"
        );
    }
}
