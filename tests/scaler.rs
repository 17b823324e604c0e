//! The scaler through the real binary with the process provider: `/work` load through the
//! balancer scales a group out from 1 to 3 instances, the end of the load scales it back in to
//! 1 without a failed request, a killed instance is replaced, no instance outlives
//! `roundhouse serve`, and the balancer's request rate scales a group out while the balancer's
//! drain, not the whole deregistration delay, decides when a scaled-in instance stops.

mod common;
use common::http::{KeepAlive, send};
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ZONE: (&str, &str) = (
    "example.test.zone",
    "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
);

fn config(min: u32, max: u32, policy: &str) -> String {
    format!(
        "{CONFIG}[health_check.hc]\nprotocol = \"http\"\npath = \"/health\"\ninterval = \"500ms\"\n\
         timeout = \"300ms\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\nalgorithm = \"least-outstanding\"\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         [[scaling_group]]\nname = \"web\"\nmin = {min}\nmax = {max}\ntarget_groups = [\"web\"]\n\
         period = \"1s\"\ninstance_warmup = \"1s\"\ndefault_cooldown = \"2s\"\n\
         health_check_grace_period = \"5s\"\nderegistration_delay = \"2s\"\n\
         [scaling_group.launch_template]\n{policy}"
    )
}

fn start(config: &str) -> (Setup, Server, SocketAddr) {
    let setup = Setup::new(config, &[ZONE]);
    let srv = Server::start(&setup.config());
    let addr = srv.logged_addr("listening listener=", "addr=");
    (setup, srv, addr)
}

fn count(srv: &Server, needles: &[&str]) -> usize {
    let log = srv.log.lock().unwrap();
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Waits up to `limit` for `f`, panicking with the log.
fn within(srv: &Server, limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out: {what}; log:\n{}", srv.log.lock().unwrap());
}

/// Process ids from the "instance launched" lines.
fn pids(srv: &Server) -> Vec<u32> {
    let log = srv.log.lock().unwrap();
    log.lines()
        .filter(|l| l.contains("instance launched"))
        .filter_map(|l| l.split("pid=Some(").nth(1)?.split(')').next()?.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Sends SIGTERM to the server (the test started it) and waits for it to exit.
fn terminate(srv: &mut Server) {
    let pid = srv.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if srv.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("roundhouse did not exit after SIGTERM");
}

#[test]
fn work_load_scales_out_to_three_and_back_in_to_one_without_failures() {
    // Two clients ask for up to two cores of /work; the target is low enough that they reach
    // three instances even when other work on the machine leaves the instances half of that.
    let policy = "[[scaling_group.policy]]\nname = \"cpu20\"\ntype = \"target-tracking\"\n\
                  target = 20.0\nscale_in_window = \"3s\"\n";
    let (_setup, mut srv, lb) = start(&config(1, 3, policy));
    within(
        &srv,
        Duration::from_secs(15),
        "the first instance serves",
        || send(lb, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status == 200,
    );
    // Two clients keep /work busy (at most 150 requests each) until three instances serve.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut c = KeepAlive::new(lb);
                let mut failures = Vec::new();
                for _ in 0..150 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match c.get("/work?ms=100") {
                        Ok((200, _)) => {}
                        other => failures.push(format!("{other:?}")),
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    within(
        &srv,
        Duration::from_secs(30),
        "three instances in service",
        || count(&srv, &["instance in service"]) >= 3,
    );
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(failures, Vec::<String>::new(), "under load");
    assert!(
        count(&srv, &["changing the desired capacity from 1 to"]) >= 1,
        "{}",
        srv.log.lock().unwrap()
    );
    // Light traffic while the group scales in: not one request may fail.
    let done = Arc::new(AtomicBool::new(false));
    let light = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failures) = (0, Vec::new());
            while !done.load(Ordering::Relaxed) && ok + failures.len() < 600 {
                let r = send(
                    lb,
                    "GET /slow?ms=20 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                );
                if r.status == 200 {
                    ok += 1;
                } else {
                    failures.push(format!("{} {}", r.status, r.body));
                }
            }
            (ok, failures)
        })
    };
    within(
        &srv,
        Duration::from_secs(30),
        "two instances terminated",
        || count(&srv, &["scaling activity ended", "Terminating instance"]) >= 2,
    );
    done.store(true, Ordering::Relaxed);
    let (ok, failures) = light.join().unwrap();
    assert_eq!(failures, Vec::<String>::new(), "during scale-in");
    assert!(ok > 10, "{ok} requests during scale-in");
    assert!(count(&srv, &["was selected for termination"]) >= 2);
    let launched = pids(&srv);
    assert_eq!(launched.len(), 3, "{launched:?}");
    assert_eq!(launched.iter().filter(|p| alive(**p)).count(), 1);
    terminate(&mut srv);
    let survivors: Vec<u32> = launched.into_iter().filter(|p| alive(*p)).collect();
    assert_eq!(
        survivors,
        Vec::<u32>::new(),
        "no instance outlives roundhouse"
    );
}

#[test]
fn a_killed_instance_is_replaced_and_none_survives_shutdown() {
    let (_setup, mut srv, lb) = start(&config(2, 2, ""));
    within(&srv, Duration::from_secs(15), "two instances", || {
        count(&srv, &["instance in service"]) >= 2
    });
    let first = pids(&srv);
    assert_eq!(first.len(), 2);
    // Like a crash: the instance (started by the server this test started) is killed.
    std::process::Command::new("kill")
        .args(["-KILL", &first[0].to_string()])
        .status()
        .unwrap();
    within(
        &srv,
        Duration::from_secs(15),
        "a replacement in service",
        || count(&srv, &["instance in service"]) >= 3,
    );
    assert_eq!(
        count(&srv, &["process status check failure"]),
        1,
        "{}",
        srv.log.lock().unwrap()
    );
    within(
        &srv,
        Duration::from_secs(10),
        "traffic reaches the group",
        || {
            let mut c = KeepAlive::new(lb);
            c.get("/").is_ok_and(|(s, _)| s == 200)
        },
    );
    let all = pids(&srv);
    assert_eq!(all.len(), 3);
    terminate(&mut srv);
    let survivors: Vec<u32> = all.into_iter().filter(|p| alive(*p)).collect();
    assert_eq!(survivors, Vec::<u32>::new());
}

#[test]
fn request_rate_through_the_balancer_scales_out_and_the_drain_ends_early() {
    // No deregistration_delay on the group: the target group's 30 s applies, but the
    // balancer has drained an idle instance long before.
    let config = format!(
        "{CONFIG}[health_check.hc]\nprotocol = \"http\"\npath = \"/health\"\ninterval = \"500ms\"\n\
         timeout = \"300ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 2\n\
         [target_group.web]\nhealth_check = \"hc\"\nderegistration_delay = \"30s\"\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         [[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 2\ntarget_groups = [\"web\"]\n\
         period = \"1s\"\ninstance_warmup = \"1s\"\n\
         [scaling_group.launch_template]\n\
         [[scaling_group.policy]]\nname = \"rps\"\ntype = \"target-tracking\"\n\
         metric = \"request-count-per-target\"\ntarget = 10.0\nscale_in_window = \"2s\"\n"
    );
    let (_setup, mut srv, lb) = start(&config);
    within(
        &srv,
        Duration::from_secs(15),
        "the first instance serves",
        || send(lb, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status == 200,
    );
    // Cheap requests, far more than 10 per second, until two instances serve (at most 3000).
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = KeepAlive::new(lb);
            let mut failures = Vec::new();
            for _ in 0..3000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match c.get("/slow?ms=5") {
                    Ok((200, _)) => {}
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        })
    };
    within(&srv, Duration::from_secs(20), "two instances", || {
        count(&srv, &["instance in service"]) >= 2
    });
    stop.store(true, Ordering::Relaxed);
    assert_eq!(load.join().unwrap(), Vec::<String>::new());
    assert!(
        count(&srv, &["target tracking alarm rps-high", "from 1 to 2."]) >= 1,
        "{}",
        srv.log.lock().unwrap()
    );
    let stopped = Instant::now();
    within(
        &srv,
        Duration::from_secs(15),
        "scale-in terminates an instance",
        || count(&srv, &["scaling activity ended", "Terminating instance"]) >= 1,
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "terminated after the balancer's drain, not the 30 s delay"
    );
    assert!(count(&srv, &["target drained group=web"]) >= 1);
    terminate(&mut srv);
}
