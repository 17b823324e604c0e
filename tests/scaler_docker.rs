//! The `docker` provider through the real binary, where a Docker daemon answers `/_ping` on
//! /var/run/docker.sock (elsewhere the test says "skipped: no docker daemon" and passes).
//! It builds a tiny image itself (`FROM scratch`, the roundhouse binary and the shared
//! libraries `ldd` lists), runs a scaling group of one container behind the balancer, and
//! checks that the container is labelled, serves through the balancer, and is removed when
//! roundhouse stops; then that a container launched with `publish = false` is reached at its
//! address on its own network; the image is removed at the end.

mod common;
use common::http::send;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SOCKET: &str = "/var/run/docker.sock";
const ZONE: (&str, &str) = (
    "example.test.zone",
    "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
);

/// True when the daemon answers `GET /_ping` within 2 s.
fn daemon_answers() -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") && out.ends_with("OK")
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the docker CLI");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `FROM scratch` + the binary + its shared libraries, at their paths.
fn build_image(dir: &Path, tag: &str) {
    let exe = env!("CARGO_BIN_EXE_roundhouse");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(exe, root.join("roundhouse")).unwrap();
    let ldd = Command::new("ldd").arg(exe).output().expect("run ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux… (0x…)"
        let path = line
            .split("=>")
            .last()
            .and_then(|r| r.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(p) = path {
            let to = root.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(p, &to).unwrap();
        }
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/roundhouse\"]\n",
    )
    .unwrap();
    let (ok, out) = docker(&["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    assert!(ok, "docker build: {out}");
}

fn labelled(group: &str) -> Vec<String> {
    let filter = format!("label=roundhouse.group={group}");
    let (ok, out) = docker(&["ps", "-aq", "--filter", &filter]);
    assert!(ok, "{out}");
    out.split_whitespace().map(str::to_string).collect()
}

/// Removes what the test made, even when it fails.
struct Cleanup {
    tag: String,
    group: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in labelled(&self.group) {
            let _ = docker(&["rm", "-f", &id]);
        }
        let _ = docker(&["network", "rm", &format!("{}-net", self.group)]);
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

#[test]
fn containers_serve_through_the_balancer_and_are_removed_at_exit() {
    if !daemon_answers() {
        println!("skipped: no docker daemon");
        return;
    }
    let started = Instant::now();
    let group = format!("rhtest{}", std::process::id());
    let tag = format!("roundhouse-test:{group}");
    let cleanup = Cleanup {
        tag: tag.clone(),
        group: group.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    build_image(dir.path(), &tag);
    let config = format!(
        "{CONFIG}[health_check.hc]\nprotocol = \"http\"\npath = \"/health\"\ninterval = \"500ms\"\n\
         timeout = \"300ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\nderegistration_delay = \"1s\"\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         [[scaling_group]]\nname = \"{group}\"\nmin = 1\nmax = 1\ntarget_groups = [\"web\"]\n\
         period = \"1s\"\ninstance_warmup = \"1s\"\nhealth_check_grace_period = \"30s\"\n\
         [scaling_group.launch_template]\nprovider = \"docker\"\nimage = \"{tag}\"\n\
         container_port = 8080\n\
         command = [\"backend\", \"--listen\", \"{{address}}:{{port}}\", \"--id\", \"{{id}}\", \"--region\", \"{{region}}\"]\n\
         env = {{ RUST_LOG = \"info\" }}\n"
    );
    let setup = Setup::new(&config, &[ZONE]);
    let mut srv = Server::start(&setup.config());
    let lb = srv.logged_addr("listening listener=", "addr=");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        let r = send(lb, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        if r.status == 200 {
            last = r.body;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        last.contains(&format!("id={group}-1")) && last.contains("region=default"),
        "no answer from the container through the balancer ({last:?}); log:\n{}",
        srv.log.lock().unwrap()
    );
    assert_eq!(labelled(&group).len(), 1, "one container, labelled");
    // SIGTERM (the test started this process): the group stops and removes its container.
    Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while srv.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(srv.child.try_wait().unwrap().is_some(), "roundhouse exits");
    // The daemon may still be finishing a removal it was asked for before the exit.
    let settle = Instant::now() + Duration::from_secs(10);
    while !labelled(&group).is_empty() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        labelled(&group),
        Vec::<String>::new(),
        "no container outlives roundhouse; log:\n{}",
        srv.log.lock().unwrap()
    );
    cpu_from_the_stats_api(&group, &tag);
    reached_on_its_network(&group, &tag);
    drop(cleanup);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
}

/// A request for one `roundhouse backend` container of `group` from image `tag`.
fn launch_request(
    id: String,
    group: &str,
    tag: &str,
    network: &str,
    publish: bool,
) -> roundhouse::scaler::provider::LaunchRequest {
    use roundhouse::config::{LaunchTemplate, ProviderKind};
    roundhouse::scaler::provider::LaunchRequest {
        id,
        group: group.to_string(),
        address: "127.0.0.1".parse().unwrap(),
        region: "default".into(),
        template: LaunchTemplate {
            provider: ProviderKind::Docker,
            version: 1,
            command: ["backend", "--listen", "{address}:{port}", "--id", "{id}"]
                .map(String::from)
                .to_vec(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
            env: vec![],
            image: tag.to_string(),
            network: network.to_string(),
            container_port: 8080,
            publish,
            port: 0,
        },
    }
}

/// The provider itself: a container burning CPU shows it in `cpu`, and `terminate` removes it.
fn cpu_from_the_stats_api(group: &str, tag: &str) {
    use roundhouse::scaler::docker::DockerProvider;
    use roundhouse::scaler::docker_api::Engine;
    use roundhouse::scaler::provider::Provider;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let provider = DockerProvider::new(Engine::new(SOCKET));
        let request = launch_request(format!("{group}-cpu"), group, tag, "bridge", true);
        let launched = provider.launch(&request).await.expect("launch");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !provider.is_ready(&request.id, launched.addr).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "container not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(provider.is_running(&request.id));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let _ = provider.cpu(&request.id); // the baseline
        let addr = launched.addr;
        tokio::task::spawn_blocking(move || {
            for _ in 0..4 {
                let r = send(
                    addr,
                    "GET /work?ms=400 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                assert_eq!(r.status, 200, "{}", r.body);
            }
        })
        .await
        .unwrap();
        // Each reading covers the time since the previous one, and the stats poller may be
        // slow on a loaded machine: take the highest reading of the next few seconds.
        let mut highest = None::<f64>;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline && highest.is_none_or(|c| c <= 20.0) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(c) = provider.cpu(&request.id) {
                highest = Some(highest.map_or(c, |h| h.max(c)));
            }
        }
        let cpu = highest.expect("a CPU reading within 10 s");
        assert!(cpu > 20.0, "1.6 s of CPU in about 3 s: {cpu:.1} %");
        provider.terminate(&request.id).await;
        assert!(!provider.is_running(&request.id));
    });
    assert_eq!(
        labelled(group),
        Vec::<String>::new(),
        "terminate removes the container"
    );
}

/// `publish = false`: nothing is published; the instance is the container's own address on
/// its network (reachable from this host through the network's bridge) at `container_port`.
fn reached_on_its_network(group: &str, tag: &str) {
    use roundhouse::scaler::docker::DockerProvider;
    use roundhouse::scaler::docker_api::Engine;
    use roundhouse::scaler::provider::Provider;
    let network = format!("{group}-net");
    let (ok, out) = docker(&["network", "create", &network]);
    assert!(ok, "docker network create: {out}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let provider = DockerProvider::new(Engine::new(SOCKET));
        let request = launch_request(format!("{group}-net-1"), group, tag, &network, false);
        let launched = provider.launch(&request).await.expect("launch");
        assert_eq!(launched.addr.port(), 8080, "the container's own port");
        assert!(
            !launched.addr.ip().is_loopback(),
            "its address on the network: {}",
            launched.addr
        );
        let (_, ports) = docker(&["port", &request.id]);
        assert_eq!(ports.trim(), "", "nothing published");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !provider.is_ready(&request.id, launched.addr).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "container not ready at {}",
                launched.addr
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let addr = launched.addr;
        let r = tokio::task::spawn_blocking(move || {
            send(
                addr,
                "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
        })
        .await
        .unwrap();
        assert!(r.body.contains(&format!("id={group}-net-1")), "{}", r.body);
        provider.terminate(&request.id).await;
    });
    assert_eq!(labelled(group), Vec::<String>::new(), "terminated");
    let (ok, out) = docker(&["network", "rm", &network]);
    assert!(ok, "docker network rm: {out}");
}
