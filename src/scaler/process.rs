//! The `process` provider: instances are child processes (by default `roundhouse backend`)
//! on a free port of the template's addresses. CPU comes from `/proc/<pid>/stat`.
//!
//! Children get a pipe as standard input; `roundhouse backend --exit-with-stdin` exits when
//! it closes, which happens when this process exits for any reason, so that no instance
//! outlives its scaler. Terminating closes the pipe first and kills after a grace time.

use super::provider::{LaunchRequest, Launched, Provider, ProviderError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a terminated instance may take to exit before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

struct Entry {
    child: Child,
    pid: Option<u32>,
    /// (time, CPU ticks) at the previous `cpu` call.
    last: (Instant, u64),
}

/// Launches instances as child processes.
pub struct ProcessProvider {
    exe: String,
    children: Mutex<HashMap<String, Entry>>,
    ticks_per_second: f64,
}

impl Default for ProcessProvider {
    fn default() -> ProcessProvider {
        ProcessProvider::new()
    }
}

impl ProcessProvider {
    /// A provider whose `{exe}` is this program.
    pub fn new() -> ProcessProvider {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "roundhouse".into());
        ProcessProvider::with_exe(exe)
    }

    /// A provider whose `{exe}` is `exe`.
    pub fn with_exe(exe: String) -> ProcessProvider {
        ProcessProvider {
            exe,
            children: Mutex::new(HashMap::new()),
            ticks_per_second: clock_ticks_per_second(),
        }
    }

    /// Process ids of the running instances.
    pub fn pids(&self) -> Vec<u32> {
        let children = self.children.lock().expect("not poisoned");
        children.values().filter_map(|e| e.pid).collect()
    }

    /// Terminates every instance (on shutdown).
    pub async fn terminate_all(&self) {
        let ids: Vec<String> = {
            let children = self.children.lock().expect("not poisoned");
            children.keys().cloned().collect()
        };
        for id in ids {
            self.terminate(&id).await;
        }
    }
}

fn substitute(arg: &str, exe: &str, request: &LaunchRequest, port: u16) -> String {
    arg.replace("{exe}", exe)
        .replace("{address}", &request.address.to_string())
        .replace("{port}", &port.to_string())
        .replace("{id}", &request.id)
        .replace("{region}", &request.region)
}

impl Provider for ProcessProvider {
    async fn launch(&self, request: &LaunchRequest) -> Result<Launched, ProviderError> {
        // The template's port, or one the kernel picks; the instance binds it a moment later.
        let probe = std::net::TcpListener::bind((request.address, request.template.port)).map_err(
            |source| ProviderError::Port {
                addr: request.address,
                source,
            },
        )?;
        let addr = probe.local_addr().map_err(|source| ProviderError::Port {
            addr: request.address,
            source,
        })?;
        drop(probe);
        let args: Vec<String> = request
            .template
            .command
            .iter()
            .map(|a| substitute(a, &self.exe, request, addr.port()))
            .collect();
        let (program, rest) = args.split_first().expect("validated: a command");
        let child = Command::new(program)
            .args(rest)
            .envs(request.template.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProviderError::Spawn {
                program: program.clone(),
                source,
            })?;
        let pid = child.id();
        let ticks = pid.and_then(cpu_ticks).unwrap_or(0);
        let entry = Entry {
            child,
            pid,
            last: (Instant::now(), ticks),
        };
        let mut children = self.children.lock().expect("not poisoned");
        children.insert(request.id.clone(), entry);
        Ok(Launched { addr, pid })
    }

    async fn terminate(&self, id: &str) {
        let entry = {
            let mut children = self.children.lock().expect("not poisoned");
            children.remove(id)
        };
        let Some(mut entry) = entry else { return };
        drop(entry.child.stdin.take());
        if tokio::time::timeout(STOP_GRACE, entry.child.wait())
            .await
            .is_err()
        {
            let _ = entry.child.start_kill();
            let _ = tokio::time::timeout(STOP_GRACE, entry.child.wait()).await;
        }
    }

    fn is_running(&self, id: &str) -> bool {
        let mut children = self.children.lock().expect("not poisoned");
        children
            .get_mut(id)
            .is_some_and(|e| matches!(e.child.try_wait(), Ok(None)))
    }

    async fn is_ready(&self, _id: &str, addr: SocketAddr) -> bool {
        let connect = tokio::net::TcpStream::connect(addr);
        matches!(
            tokio::time::timeout(Duration::from_millis(500), connect).await,
            Ok(Ok(_))
        )
    }

    fn cpu(&self, id: &str) -> Option<f64> {
        let mut children = self.children.lock().expect("not poisoned");
        let entry = children.get_mut(id)?;
        let ticks = cpu_ticks(entry.pid?)?;
        let now = Instant::now();
        let (then, before) = entry.last;
        entry.last = (now, ticks);
        let wall = now.duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        let cpu = ticks.saturating_sub(before) as f64 / self.ticks_per_second;
        Some(100.0 * cpu / wall)
    }
}

/// User + system CPU time of `pid` in clock ticks, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's USER_HZ from the auxiliary vector (AT_CLKTCK), 100 when unreadable.
fn clock_ticks_per_second() -> f64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100.0;
    };
    auxv.chunks_exact(16)
        .map(|c| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
            (word(&c[..8]), word(&c[8..]))
        })
        .find(|&(key, _)| key == AT_CLKTCK)
        .map(|(_, v)| v as f64)
        .filter(|&v| v > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LaunchTemplate, ProviderKind};

    fn request(command: &[&str]) -> LaunchRequest {
        LaunchRequest {
            id: "t-1".into(),
            group: "t".into(),
            address: "127.0.0.1".parse().unwrap(),
            region: "local".into(),
            template: LaunchTemplate {
                provider: ProviderKind::Process,
                version: 1,
                command: command.iter().map(|s| s.to_string()).collect(),
                addresses: vec!["127.0.0.1".parse().unwrap()],
                port: 0,
                env: vec![("SPIN".into(), "1".into())],
                image: String::new(),
                network: String::new(),
                container_port: 0,
                publish: true,
            },
        }
    }

    #[test]
    fn placeholders() {
        let r = request(&[]);
        assert_eq!(
            substitute(
                "{exe} --listen {address}:{port} --id {id}@{region}",
                "rh",
                &r,
                81
            ),
            "rh --listen 127.0.0.1:81 --id t-1@local"
        );
    }

    #[tokio::test]
    async fn launches_measures_notices_exit_and_terminates() {
        let p = ProcessProvider::with_exe("sh".into());
        // Busy for seconds (killed after the grace time: it does not read its input).
        let spin = "i=0; while [ $i -lt 50000000 ]; do i=$((i+1)); done # {port}";
        let launched = p.launch(&request(&["sh", "-c", spin])).await.unwrap();
        assert!(launched.addr.port() > 0);
        let pid = launched.pid.unwrap();
        assert!(p.is_running("t-1"));
        assert_eq!(p.pids(), vec![pid]);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let cpu = p.cpu("t-1").unwrap();
        assert!(cpu > 20.0, "a spinning shell uses CPU: {cpu}");
        p.terminate("t-1").await;
        assert!(!p.is_running("t-1"));
        assert!(p.pids().is_empty());
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z"), "gone: {stat}");
        // An instance that exits by itself is noticed.
        p.launch(&request(&["sh", "-c", "exit 3 # {port}"]))
            .await
            .unwrap();
        let mut exited = false;
        for _ in 0..100 {
            if !p.is_running("t-1") {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(exited);
        p.terminate_all().await;
        assert!(p.pids().is_empty());
    }

    #[test]
    fn clock_ticks() {
        let hz = clock_ticks_per_second();
        assert!((10.0..=10_000.0).contains(&hz), "{hz}");
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
