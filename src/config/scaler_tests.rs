use crate::config::{Config, HealthCheckType, Metric, PolicyKind, ProviderKind};
use std::path::Path;
use std::time::Duration;

const BASE: &str = "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"\"\n\
    [target_group.web]\n\
    [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n";

fn parse(extra: &str) -> Result<Config, String> {
    Config::parse(
        &format!("{BASE}{extra}"),
        Path::new("t.toml"),
        Path::new("/b"),
    )
    .map_err(|e| e.to_string())
}

const GROUP: &str = "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = [\"web\"]\n\
    [scaling_group.launch_template]\n";

#[test]
fn a_full_group_validates() {
    let c = parse(&format!(
        "{GROUP}version = 2\n\
         [[scaling_group.policy]]\nname = \"cpu50\"\ntype = \"target-tracking\"\ntarget = 50.0\nscale_in_window = \"30s\"\n\
         [[scaling_group.policy]]\nname = \"step-out\"\ntype = \"step\"\ncomparison = \">=\"\nthreshold = 70.0\nevaluation_periods = 2\n\
         steps = [{{ lower = 0.0, upper = 20.0, adjustment = 1 }}, {{ lower = 20.0, adjustment = 2 }}]\n\
         [[scaling_group.policy]]\nname = \"in\"\ntype = \"simple\"\ncomparison = \"<\"\nthreshold = 30.0\nadjustment = -1\ncooldown = \"2m\"\n\
         [[scaling_group.scheduled]]\nname = \"morning\"\ncron = \"0 9 * * mon-fri\"\ntime_zone = \"+09:00\"\nmin = 2\n"
    ))
    .unwrap();
    let g = &c.scaler[0];
    assert_eq!((g.min, g.desired, g.max), (1, 1, 3));
    assert_eq!(g.health_check_type, HealthCheckType::Process);
    assert_eq!(g.launch_template.version, 2);
    assert_eq!(g.launch_template.command[0], "{exe}");
    assert_eq!(g.policies.len(), 3);
    assert!(matches!(
        g.policies[2].kind,
        PolicyKind::Simple { cooldown, .. } if cooldown == Duration::from_secs(120)
    ));
    assert_eq!(g.scheduled[0].zone.offset_secs, 9 * 3600);
    assert!(
        c.balancer.target_groups[0].targets.is_empty(),
        "filled by the group"
    );
}

#[test]
fn errors_name_the_line_and_key() {
    let line = |extra: &str| -> (usize, String) {
        let e = parse(extra).unwrap_err();
        let rest = e.strip_prefix("t.toml:").unwrap();
        let (n, msg) = rest.split_once(": ").unwrap();
        (
            n.parse::<usize>().unwrap() - BASE.lines().count(),
            msg.to_string(),
        )
    };
    let (n, m) = line(
        "[[scaling_group]]\nname = \"web\"\nmin = 2\ndesired = 1\nmax = 3\ntarget_groups = [\"web\"]\n[scaling_group.launch_template]\n",
    );
    assert_eq!(n, 4);
    assert!(m.contains("min <= desired <= max"), "{m}");
    let (n, m) = line(&format!("{GROUP}command = [\"sleep\", \"9\"]\n"));
    assert_eq!(n, 7);
    assert!(m.contains("`{port}`"), "{m}");
    let (n, m) = line(
        "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = [\"web\", \"nope\"]\n[scaling_group.launch_template]\n",
    );
    assert_eq!(n, 5);
    assert!(m.contains("no [target_group.nope]"), "{m}");
    let (n, m) = line(&format!(
        "{GROUP}[[scaling_group.policy]]\nname = \"p\"\ntype = \"target-tracking\"\ntarget = 50.0\nthreshold = 3.0\n"
    ));
    assert_eq!(n, 11);
    assert!(
        m.contains("threshold: not used by `type = \"target-tracking\"`"),
        "{m}"
    );
    let (n, m) = line(&format!(
        "{GROUP}[[scaling_group.policy]]\nname = \"p\"\ntype = \"step\"\ncomparison = \">\"\nthreshold = 3.0\n\
         steps = [{{ lower = 0.0, upper = 20.0, adjustment = 1 }}, {{ lower = 10.0, adjustment = 2 }}]\n"
    ));
    assert_eq!(n, 12);
    assert!(m.contains("steps overlap"), "{m}");
    let (n, m) = line(&format!(
        "{GROUP}[[scaling_group.scheduled]]\nname = \"s\"\ncron = \"0 25 * * *\"\nmin = 1\n"
    ));
    assert_eq!(n, 9);
    assert!(m.contains("hour"), "{m}");
    let (n, m) = line(&format!(
        "{GROUP}[[scaling_group.scheduled]]\nname = \"s\"\ncron = \"0 1 * * *\"\ntime_zone = \"Asia/Seoul\"\nmin = 1\n"
    ));
    assert_eq!(n, 10);
    assert!(m.contains("not a time zone"), "{m}");
    let (n, m) = line(&format!("{GROUP}bogus = 1\n"));
    assert_eq!(n, 7);
    assert!(m.contains("unknown field `bogus`"), "{m}");
    let (_, m) = line(
        "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\nhealth_check_type = \"balancer\"\n[scaling_group.launch_template]\n[[scaling_group]]\nname = \"b\"\nmin = 1\nmax = 1\ntarget_groups = [\"web\"]\n[scaling_group.launch_template]\n",
    );
    assert!(m.contains("needs at least one of `target_groups`"), "{m}");
}

#[test]
fn balancer_metrics_and_the_target_groups_deregistration_delay() {
    let base = "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"\"\n\
        [target_group.web]\nderegistration_delay = \"45s\"\ntargets = [{ address = \"127.0.0.1:8\" }]\n[target_group.api]\nderegistration_delay = \"90s\"\ntargets = [{ address = \"127.0.0.1:9\" }]\n\
        [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n";
    let parse = |extra: &str| {
        Config::parse(
            &format!("{base}{extra}"),
            Path::new("t.toml"),
            Path::new("/b"),
        )
        .map_err(|e| e.to_string())
    };
    let group = |tgs: &str, extra: &str| {
        format!(
            "[[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = {tgs}\n{extra}\
             [scaling_group.launch_template]\n\
             [[scaling_group.policy]]\nname = \"rps\"\ntype = \"target-tracking\"\n\
             metric = \"request-count-per-target\"\ntarget = 100.0\n\
             [[scaling_group.policy]]\nname = \"slow\"\ntype = \"step\"\nmetric = \"p95-latency\"\n\
             comparison = \">\"\nthreshold = 250.0\nsteps = [{{ lower = 0.0, adjustment = 1 }}]\n"
        )
    };
    let c = parse(&group("[\"web\", \"api\"]", "")).unwrap();
    let g = &c.scaler[0];
    assert_eq!(g.policies[0].metric(), Metric::RequestCountPerTarget);
    assert_eq!(g.policies[1].metric(), Metric::P95Latency);
    assert_eq!(
        g.deregistration_delay,
        Duration::from_secs(90),
        "the largest of web (45 s) and api (90 s)"
    );
    let c = parse(&group("[\"web\"]", "")).unwrap();
    assert_eq!(c.scaler[0].deregistration_delay, Duration::from_secs(45));
    let c = parse(&group("[\"web\"]", "deregistration_delay = \"5s\"\n")).unwrap();
    assert_eq!(c.scaler[0].deregistration_delay, Duration::from_secs(5));
    let e = parse(&group("[]", "")).unwrap_err();
    assert!(
        e.contains("policy.rps.metric: `request-count-per-target` is measured by the balancer"),
        "{e}"
    );
    let e = parse(&group("[\"web\"]", "").replace("p95-latency", "p99-latency")).unwrap_err();
    assert!(
        e.contains("`p99-latency` is not `cpu`, `request-count-per-target` or `p95-latency`"),
        "{e}"
    );
}

#[test]
fn notify_url_must_be_plain_http() {
    let c = parse(&GROUP.replace(
        "[scaling_group.launch_template]",
        "notify_url = \"http://127.0.0.1:9000/hooks/scaling\"\n[scaling_group.launch_template]",
    ))
    .unwrap();
    assert_eq!(
        c.scaler[0].notify_url.as_ref().unwrap().to_string(),
        "http://127.0.0.1:9000/hooks/scaling"
    );
    for bad in ["https://example.test/h", "not a url", "/relative"] {
        let e = parse(&GROUP.replace(
            "[scaling_group.launch_template]",
            &format!("notify_url = \"{bad}\"\n[scaling_group.launch_template]"),
        ))
        .unwrap_err();
        assert!(e.contains("scaling_group.web.notify_url:"), "{e}");
    }
}

#[test]
fn docker_templates_need_an_image_and_no_port_placeholder() {
    let c = parse(&format!(
        "{GROUP}provider = \"docker\"\nimage = \"roundhouse:dev\"\ncontainer_port = 9000\n"
    ))
    .unwrap();
    let t = &c.scaler[0].launch_template;
    assert_eq!(t.provider, ProviderKind::Docker);
    assert_eq!(
        (t.image.as_str(), t.network.as_str(), t.container_port),
        ("roundhouse:dev", "bridge", 9000)
    );
    assert!(t.command.is_empty(), "the image's own command");
    let e = parse(&format!("{GROUP}provider = \"docker\"\n")).unwrap_err();
    assert!(
        e.contains("launch_template.image: the docker provider needs an image"),
        "{e}"
    );
    let e = parse(&format!("{GROUP}image = \"x\"\n")).unwrap_err();
    assert!(e.contains("only the docker provider runs images"), "{e}");
}

#[test]
fn only_docker_templates_choose_whether_to_publish() {
    let docker = format!("{GROUP}provider = \"docker\"\nimage = \"roundhouse:dev\"\n");
    let c = parse(&docker).unwrap();
    assert!(c.scaler[0].launch_template.publish, "published by default");
    let c = parse(&format!(
        "{docker}network = \"lab-us-east\"\npublish = false\n"
    ))
    .unwrap();
    let t = &c.scaler[0].launch_template;
    assert!(!t.publish);
    assert_eq!(t.network, "lab-us-east");
    let e = parse(&format!("{GROUP}publish = false\n")).unwrap_err();
    assert!(
        e.contains("launch_template.publish: only the docker provider publishes"),
        "{e}"
    );
}
