use super::*;
use crate::config::{
    LaunchTemplate, Metric, PolicyKind, ProviderKind, ScalingPolicy, ScheduledAction,
};
use crate::scaler::metrics::StatsView;
use crate::scaler::provider::{Launched, ProviderError};
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Fake {
    running: bool,
    ready: bool,
    version_addr: SocketAddr,
}

/// Instances that exist only in memory: ready at once, CPU as set.
#[derive(Default)]
struct FakeProvider {
    instances: Mutex<HashMap<String, Fake>>,
    cpu: Mutex<f64>,
    launched: Mutex<Vec<String>>,
    terminated: Mutex<Vec<String>>,
    refuse: Mutex<bool>,
}

impl FakeProvider {
    fn crash(&self, id: &str) {
        self.instances.lock().unwrap().get_mut(id).unwrap().running = false;
    }

    fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .instances
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| f.running)
            .map(|(id, _)| id.clone())
            .collect();
        v.sort();
        v
    }
}

impl Provider for FakeProvider {
    async fn launch(&self, r: &LaunchRequest) -> Result<Launched, ProviderError> {
        if *self.refuse.lock().unwrap() {
            return Err(ProviderError::Refused("quota".into()));
        }
        let mut all = self.instances.lock().unwrap();
        let addr = SocketAddr::new(r.address, 20_000 + all.len() as u16);
        all.insert(
            r.id.clone(),
            Fake {
                running: true,
                ready: true,
                version_addr: addr,
            },
        );
        self.launched.lock().unwrap().push(r.id.clone());
        Ok(Launched { addr, pid: None })
    }

    async fn terminate(&self, id: &str) {
        if let Some(f) = self.instances.lock().unwrap().get_mut(id) {
            f.running = false;
        }
        self.terminated.lock().unwrap().push(id.to_string());
    }

    fn is_running(&self, id: &str) -> bool {
        self.instances
            .lock()
            .unwrap()
            .get(id)
            .is_some_and(|f| f.running)
    }

    async fn is_ready(&self, id: &str, addr: SocketAddr) -> bool {
        let all = self.instances.lock().unwrap();
        all.get(id)
            .is_some_and(|f| f.ready && f.version_addr == addr)
    }

    fn cpu(&self, _id: &str) -> Option<f64> {
        Some(*self.cpu.lock().unwrap())
    }
}

fn config(min: u32, desired: u32, max: u32) -> ScalingGroup {
    ScalingGroup {
        name: "web".into(),
        region: "us-east".into(),
        min,
        desired,
        max,
        health_check_type: HealthCheckType::Process,
        health_check_grace_period: Duration::from_secs(5),
        default_cooldown: Duration::from_secs(2),
        instance_warmup: Duration::from_secs(1),
        period: Duration::from_secs(1),
        deregistration_delay: Duration::from_secs(3),
        target_groups: vec!["tg".into()],
        pools: vec![],
        activity_history: 50,
        notify_url: None,
        launch_template: LaunchTemplate {
            provider: ProviderKind::Process,
            version: 1,
            command: vec!["x".into(), "{port}".into()],
            addresses: vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
            port: 0,
            env: vec![],
            image: String::new(),
            network: String::new(),
            container_port: 0,
            publish: true,
        },
        policies: vec![],
        scheduled: vec![],
    }
}

struct Harness {
    provider: Arc<FakeProvider>,
    regs: watch::Receiver<Registrations>,
    commands: mpsc::Sender<Command>,
    history: Arc<Mutex<History>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    status: watch::Receiver<GroupStatus>,
}

fn start(c: ScalingGroup) -> Harness {
    start_with(c, None)
}

fn start_with(c: ScalingGroup, health: Option<HealthView>) -> Harness {
    let provider = Arc::new(FakeProvider::default());
    let (tx, regs) = watch::channel(Registrations::default());
    let (group, commands, history) = Group::new(c, provider.clone(), tx, health);
    let stop = CancellationToken::new();
    let status = group.status();
    let task = tokio::spawn(group.run(stop.clone()));
    Harness {
        provider,
        regs,
        commands,
        history,
        stop,
        task,
        status,
    }
}

impl Harness {
    fn registered(&self) -> Vec<SocketAddr> {
        self.regs
            .borrow()
            .groups
            .get("web")
            .map(|r| r.instances.clone())
            .unwrap_or_default()
    }

    fn causes(&self) -> Vec<String> {
        let h = self.history.lock().unwrap();
        h.items().map(|a| a.cause.clone()).collect()
    }

    async fn set_desired(&self, desired: u32) -> Result<(), String> {
        self.update(CapacityUpdate {
            desired: Some(desired),
            ..CapacityUpdate::default()
        })
        .await
    }

    async fn update(&self, capacity: CapacityUpdate) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        let c = Command::Update { capacity, reply };
        self.commands.send(c).await.unwrap();
        rx.await.unwrap()
    }

    async fn start_refresh(&self) -> Result<u32, String> {
        let (reply, rx) = oneshot::channel();
        let c = Command::StartRefresh { reply };
        self.commands.send(c).await.unwrap();
        rx.await.unwrap()
    }

    async fn stop(self) -> Arc<FakeProvider> {
        self.stop.cancel();
        self.task.await.unwrap();
        self.provider
    }
}

async fn wait(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn launches_registers_and_spreads_over_zones() {
    let h = start(config(2, 2, 4));
    wait(Duration::from_millis(500)).await;
    let regs = h.registered();
    assert_eq!(regs.len(), 2, "{regs:?}");
    let ips: Vec<String> = regs.iter().map(|a| a.ip().to_string()).collect();
    assert!(ips.contains(&"127.0.0.1".into()) && ips.contains(&"127.0.0.2".into()));
    {
        let hist = h.history.lock().unwrap();
        let a: Vec<_> = hist.items().collect();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|a| a.status == Status::Successful));
        assert!(
            a[0].cause
                .contains("the group was created with desired capacity 2")
                && a[0].cause.contains("increasing the capacity from 0 to 2."),
            "{}",
            a[0].cause
        );
    }
    let p = h.stop().await;
    assert!(p.running().is_empty(), "shutdown terminates every instance");
}

#[tokio::test(start_paused = true)]
async fn a_crashed_instance_is_replaced() {
    let h = start(config(2, 2, 2));
    wait(Duration::from_millis(500)).await;
    h.provider.crash("web-1");
    wait(Duration::from_millis(600)).await;
    assert_eq!(h.provider.running(), ["web-2", "web-3"]);
    assert_eq!(h.registered().len(), 2);
    let causes = h.causes();
    assert!(
        causes
            .iter()
            .any(|c| c.contains("in response to a process status check failure")),
        "{causes:?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn scale_in_deregisters_then_terminates_after_the_delay() {
    let h = start(config(1, 3, 3));
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.registered().len(), 3);
    assert!(h.set_desired(4).await.is_err(), "above max");
    h.set_desired(1).await.unwrap();
    wait(Duration::from_millis(300)).await;
    assert_eq!(h.registered().len(), 1, "deregistered at once");
    assert_eq!(h.provider.running().len(), 3, "still draining");
    wait(Duration::from_secs(3)).await;
    assert_eq!(h.provider.running().len(), 1, "terminated after the delay");
    let causes = h.causes();
    let shrink = causes.iter().find(|c| c.contains("shrinking")).unwrap();
    assert!(
        shrink.contains("a user request explicitly set group desired capacity changing the desired capacity from 3 to 1")
            && shrink.contains("was selected for termination"),
        "{shrink}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn scale_in_takes_the_oldest_launch_template_first() {
    let h = start(config(1, 2, 4));
    wait(Duration::from_millis(500)).await;
    let mut newer = config(1, 2, 4);
    newer.launch_template.version = 2;
    newer.desired = 4; // the file's desired changed: a manual change
    h.commands
        .send(Command::Reconfigure(Box::new(newer)))
        .await
        .unwrap();
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.provider.running().len(), 4);
    h.set_desired(2).await.unwrap();
    wait(Duration::from_secs(4)).await;
    assert_eq!(
        h.provider.running(),
        ["web-3", "web-4"],
        "version 1 went first"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn target_tracking_scales_out_and_back_in() {
    let mut c = config(1, 1, 3);
    c.policies = vec![ScalingPolicy {
        name: "cpu50".into(),
        kind: PolicyKind::TargetTracking {
            metric: Metric::Cpu,
            target: 50.0,
            disable_scale_in: false,
            scale_in_window: Duration::from_secs(3),
        },
    }];
    let h = start(c);
    *h.provider.cpu.lock().unwrap() = 100.0;
    wait(Duration::from_millis(2500)).await;
    assert_eq!(h.provider.running().len(), 2, "ceil(1 * 100 / 50)");
    *h.provider.cpu.lock().unwrap() = 5.0;
    wait(Duration::from_secs(10)).await;
    assert_eq!(h.provider.running().len(), 1);
    let causes = h.causes();
    assert!(
        causes.iter().any(|c| c.contains(
            "target tracking alarm cpu50-high (metric 100.0 against target 50.0) in state ALARM triggered policy cpu50 changing the desired capacity from 1 to 2."
        )),
        "{causes:#?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn scheduled_actions_and_failed_launches() {
    let mut c = config(1, 1, 5);
    c.scheduled = vec![ScheduledAction {
        name: "every-minute".into(),
        cron: "* * * * *".parse().unwrap(),
        zone: "UTC".parse().unwrap(),
        min: Some(3),
        desired: None,
        max: None,
    }];
    // The schedule follows wall-clock minutes: start well before one turns.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 60.0;
    if into_minute > 57.0 {
        std::thread::sleep(Duration::from_secs_f64(60.2 - into_minute));
    }
    let h = start(c);
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.provider.running().len(), 1);
    *h.provider.refuse.lock().unwrap() = true;
    wait(Duration::from_secs(61)).await;
    let failed = {
        let hist = h.history.lock().unwrap();
        hist.items().filter(|a| a.status == Status::Failed).count()
    };
    // The minute starts somewhere in these 61 s; attempts are 5 s apart, not one per tick.
    assert!((1..=13).contains(&failed), "{failed} failed launches");
    *h.provider.refuse.lock().unwrap() = false;
    wait(Duration::from_secs(6)).await;
    assert_eq!(h.provider.running().len(), 3, "min 3 from the schedule");
    assert!(
        h.causes()
            .iter()
            .any(|c| c.contains("a scheduled action every-minute updated the group constraints to min: 3, max: 5, desired: 3"))
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn balancer_health_failures_replace_after_the_grace_period() {
    let sick = Arc::new(Mutex::new(None::<SocketAddr>));
    let s = sick.clone();
    let view: HealthView = Arc::new(move |a| match *s.lock().unwrap() == Some(a) {
        true => Verdict::Unhealthy,
        false => Verdict::Healthy,
    });
    let mut c = config(1, 1, 1);
    c.health_check_type = HealthCheckType::Balancer;
    let h = start_with(c, Some(view));
    wait(Duration::from_millis(500)).await;
    let first = h.registered()[0];
    *sick.lock().unwrap() = Some(first);
    wait(Duration::from_secs(3)).await;
    assert_eq!(h.provider.running(), ["web-1"], "within the grace period");
    wait(Duration::from_secs(3)).await;
    assert_eq!(h.provider.running(), ["web-2"]);
    assert!(
        h.causes()
            .iter()
            .any(|c| c.contains("in response to a balancer health check failure"))
    );
    h.stop().await;
}

/// A balancer in front of the group: `load` requests per second spread evenly over the
/// registered instances; responses are slow (0.5 s .. 1 s) above 10 requests per second
/// per instance, fast (1 ms .. 5 ms) otherwise.
fn fake_balancer(regs: watch::Receiver<Registrations>, load: Arc<Mutex<f64>>) -> StatsView {
    type Counters = HashMap<SocketAddr, (f64, Vec<u64>)>;
    let state: Mutex<(Option<tokio::time::Instant>, Counters)> = Mutex::default();
    Arc::new(move || {
        let now = tokio::time::Instant::now();
        let addrs = regs
            .borrow()
            .groups
            .get("web")
            .map(|r| r.instances.clone())
            .unwrap_or_default();
        let mut s = state.lock().unwrap();
        let dt = s.0.map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        s.0 = Some(now);
        let per = *load.lock().unwrap() / addrs.len().max(1) as f64;
        for a in &addrs {
            let e = s.1.entry(*a).or_insert_with(|| (0.0, vec![0; 13]));
            let before = e.0 as u64;
            e.0 += per * dt;
            let bucket = if per > 10.0 { 8 } else { 1 };
            e.1[bucket] += e.0 as u64 - before;
        }
        s.1.iter()
            .map(|(a, (n, b))| crate::balancer::TargetStats {
                addr: *a,
                requests: *n as u64,
                buckets: b.clone(),
            })
            .collect()
    })
}

fn tracking(metric: Metric, target: f64) -> ScalingPolicy {
    ScalingPolicy {
        name: "tt".into(),
        kind: PolicyKind::TargetTracking {
            metric,
            target,
            disable_scale_in: false,
            scale_in_window: Duration::from_secs(3),
        },
    }
}

fn start_linked(c: ScalingGroup, load: Arc<Mutex<f64>>, drains: DrainView) -> Harness {
    let provider = Arc::new(FakeProvider::default());
    let (tx, regs) = watch::channel(Registrations::default());
    let stats = fake_balancer(regs.clone(), load);
    let (group, commands, history) = Group::new(c, provider.clone(), tx, None);
    let group = group.with_balancer(stats, drains);
    let stop = CancellationToken::new();
    let status = group.status();
    let task = tokio::spawn(group.run(stop.clone()));
    Harness {
        provider,
        regs,
        commands,
        history,
        stop,
        task,
        status,
    }
}

fn no_drains() -> DrainView {
    Arc::new(|_| Vec::new())
}

#[tokio::test(start_paused = true)]
async fn request_count_per_target_tracks_the_balancer_load() {
    let mut c = config(1, 1, 4);
    c.policies = vec![tracking(Metric::RequestCountPerTarget, 10.0)];
    let load = Arc::new(Mutex::new(30.0));
    let h = start_linked(c, load.clone(), no_drains());
    // CPU is idle: only the request rate can scale the group out.
    *h.provider.cpu.lock().unwrap() = 0.0;
    wait(Duration::from_secs(4)).await;
    assert_eq!(h.provider.running().len(), 3, "ceil(1 * 30 / 10)");
    // At 10 per target it holds: no oscillation.
    wait(Duration::from_secs(10)).await;
    assert_eq!(h.provider.launched.lock().unwrap().len(), 3);
    assert!(h.provider.terminated.lock().unwrap().is_empty());
    *load.lock().unwrap() = 4.0;
    wait(Duration::from_secs(12)).await;
    assert_eq!(h.provider.running().len(), 1, "ceil(3 * 1.33 / 10)");
    let causes = h.causes();
    assert!(
        causes.iter().any(|c| c.contains(
            "target tracking alarm tt-high (metric 30.0 against target 10.0) in state ALARM \
             triggered policy tt changing the desired capacity from 1 to 3."
        )),
        "{causes:#?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn p95_latency_scales_out_when_responses_slow_down() {
    let mut c = config(1, 1, 4);
    c.policies = vec![tracking(Metric::P95Latency, 400.0)];
    let load = Arc::new(Mutex::new(5.0));
    let h = start_linked(c, load.clone(), no_drains());
    wait(Duration::from_secs(5)).await;
    assert_eq!(
        h.provider.running().len(),
        1,
        "fast responses: p95 about 5 ms"
    );
    // 25 per second makes one instance slow (p95 about 975 ms): out to ceil(2.4) = 3.
    *load.lock().unwrap() = 25.0;
    wait(Duration::from_secs(3)).await;
    assert_eq!(h.provider.running().len(), 3);
    let causes = h.causes();
    assert!(
        causes.iter().any(
            |c| c.contains("target tracking alarm tt-high (metric 975.0 against target 400.0)")
        ),
        "{causes:#?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn scale_in_terminates_once_the_balancer_has_drained() {
    let tokens: Arc<Mutex<HashMap<SocketAddr, CancellationToken>>> = Arc::default();
    let t = tokens.clone();
    let drains: DrainView = Arc::new(move |a| {
        let token = CancellationToken::new();
        t.lock().unwrap().insert(a, token.clone());
        vec![token]
    });
    let mut c = config(1, 3, 3);
    c.deregistration_delay = Duration::from_secs(30);
    let h = start_linked(c, Arc::new(Mutex::new(0.0)), drains);
    wait(Duration::from_millis(500)).await;
    h.set_desired(1).await.unwrap();
    wait(Duration::from_secs(2)).await;
    assert_eq!(h.registered().len(), 1);
    assert_eq!(h.provider.running().len(), 3, "requests still in flight");
    let draining: Vec<SocketAddr> = tokens.lock().unwrap().keys().copied().collect();
    assert_eq!(draining.len(), 2);
    tokens.lock().unwrap()[&draining[0]].cancel();
    wait(Duration::from_millis(300)).await;
    assert_eq!(h.provider.running().len(), 2, "one drained: terminated");
    wait(Duration::from_secs(28)).await;
    assert_eq!(h.provider.running().len(), 1, "the other at the delay");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn capacity_updates_move_min_max_and_desired() {
    let h = start(config(1, 2, 3));
    wait(Duration::from_millis(500)).await;
    let up = |min, max, desired| CapacityUpdate { min, max, desired };
    let e = h.update(up(Some(3), Some(2), None)).await.unwrap_err();
    assert_eq!(e, "min 3 is above max 2");
    let e = h.update(up(None, None, Some(5))).await.unwrap_err();
    assert_eq!(e, "desired capacity 5 is outside min 1 and max 3");
    // A lower max moves the desired capacity down with it.
    h.update(up(None, Some(1), None)).await.unwrap();
    assert_eq!((h.status.borrow().max, h.status.borrow().desired), (1, 1));
    wait(Duration::from_secs(4)).await;
    assert_eq!(h.provider.running().len(), 1);
    h.update(up(Some(2), Some(4), Some(4))).await.unwrap();
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.provider.running().len(), 4);
    let causes = h.causes();
    assert!(
        causes.iter().any(|c| c.contains(
            "a user request update of the group constraints to min: 1, max: 1, desired: 1 \
             changing the desired capacity from 2 to 1"
        )),
        "{causes:?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_instance_refresh_replaces_one_at_a_time_launching_first() {
    // At max: the refresh runs one instance above it while it lasts.
    let h = start(config(2, 2, 2));
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.start_refresh().await, Ok(2));
    assert!(h.start_refresh().await.is_err(), "one at a time");
    let mut most = 0;
    for _ in 0..150 {
        wait(Duration::from_millis(100)).await;
        let in_service = h.registered().len();
        assert!(in_service >= 2, "capacity never drops below desired");
        most = most.max(in_service);
        if h.status.borrow().refresh.is_none() {
            break;
        }
    }
    assert!(h.status.borrow().refresh.is_none(), "the refresh finished");
    assert_eq!(most, 3, "one replacement at a time");
    wait(Duration::from_secs(4)).await;
    assert_eq!(h.provider.running(), ["web-3", "web-4"]);
    assert_eq!(h.registered().len(), 2);
    {
        let hist = h.history.lock().unwrap();
        let refresh = hist.items().find(|a| a.description == "Instance refresh");
        assert_eq!(refresh.map(|a| a.status), Some(Status::Successful));
    }
    let causes = h.causes();
    let started = causes
        .iter()
        .filter(|c| c.contains("started in response to an instance refresh"));
    assert_eq!(started.count(), 2, "{causes:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_instance_refresh_waits_for_the_replacement_to_pass_its_checks() {
    let passing = Arc::new(Mutex::new(false));
    let p = passing.clone();
    // The first instance (port 20000) is healthy; later ones only once checks pass.
    let view: HealthView = Arc::new(move |a| match a.port() == 20_000 || *p.lock().unwrap() {
        true => Verdict::Healthy,
        false => Verdict::Pending,
    });
    let h = start_with(config(1, 1, 1), Some(view));
    wait(Duration::from_millis(500)).await;
    assert_eq!(h.start_refresh().await, Ok(1));
    wait(Duration::from_secs(5)).await;
    assert_eq!(
        h.provider.running(),
        ["web-1", "web-2"],
        "the old one stays"
    );
    assert!(h.status.borrow().refresh.is_some());
    *passing.lock().unwrap() = true;
    wait(Duration::from_secs(5)).await;
    assert_eq!(h.provider.running(), ["web-2"]);
    assert!(h.status.borrow().refresh.is_none());
    h.stop().await;
}
