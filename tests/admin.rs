//! The admin API through the real binary: metrics that move with queries and requests,
//! the status document, actions refused without the token and effective with it (a drained
//! endpoint leaves DNS answers, a forced-down target gets no requests, a reload keeps both),
//! `roundhouse status`, and the dashboard (rendered in headless Chromium when installed).

mod common;
use common::http::{Backend, get, send};
use common::*;
use std::net::SocketAddr;
use std::process::Command;

const TOKEN: &str = "s3cret";
const ZONE: &str = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.53\n";

struct Admin {
    _setup: Setup,
    srv: Server,
    admin: SocketAddr,
    lb: SocketAddr,
    backends: Vec<Backend>,
}

/// Regions east and west, a pool with one endpoint in each, a target group of two backends
/// behind a listener, and an admin server with `admin` extra lines.
fn start(admin: &str) -> Admin {
    let backends = vec![Backend::start(0), Backend::start(1)];
    let config = format!(
        "{CONFIG}[admin]\nlisten = \"127.0.0.1:0\"\n{admin}\
         [[region]]\nname = \"east\"\n[[region]]\nname = \"west\"\n\
         [pool.web]\nendpoints = [{{ address = \"192.0.2.1\", region = \"east\" }}, {{ address = \"192.0.2.2\", region = \"west\" }}]\n\
         [[binding]]\nname = \"www.example.test.\"\ntype = \"A\"\npool = \"web\"\nanswers = 2\n\
         [target_group.app]\ntargets = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]\n\
         [[listener]]\nname = \"app\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"app\"\n",
        backends[0].addr, backends[1].addr
    );
    let setup = Setup::new(&config, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    let lb = srv.logged_addr("listening listener=", "addr=");
    Admin {
        _setup: setup,
        srv,
        admin,
        lb,
        backends,
    }
}

fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let r = send(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{auth}Content-Length: 0\r\n\r\n"
        ),
    );
    (r.status, r.body)
}

fn status(a: &Admin) -> serde_json::Value {
    let (code, body) = request(a.admin, "GET", "/v1/status", None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The value of the series `series` (full name with labels) in `/metrics` (0 when absent).
fn metric(a: &Admin, series: &str) -> u64 {
    common::http::metric(a.admin, series).unwrap_or(0)
}

fn dns_addresses(a: &Admin) -> Vec<String> {
    let mut v: Vec<String> = answers(&ask(a.srv.addr, "www.example.test.", 1))
        .iter()
        .map(|r| r.rsplit(' ').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn metrics_move_with_queries_and_requests() {
    let a = start(&format!("token = \"{TOKEN}\"\n"));
    let q = "roundhouse_dns_queries_total{zone=\"example.test.\",qtype=\"A\",rcode=\"NOERROR\",transport=\"udp\"}";
    let nx = "roundhouse_dns_queries_total{zone=\"example.test.\",qtype=\"A\",rcode=\"NXDOMAIN\",transport=\"udp\"}";
    let east = "roundhouse_pool_answers_total{pool=\"web\",region=\"east\",endpoint=\"192.0.2.1\"}";
    let target = format!(
        "roundhouse_balancer_requests_total{{group=\"app\",target=\"{}\",class=\"2xx\"}}",
        a.backends[0].addr
    );
    assert_eq!(metric(&a, q), 0);
    assert_eq!(metric(&a, east), 0);
    for _ in 0..3 {
        assert_eq!(dns_addresses(&a), ["192.0.2.1", "192.0.2.2"]);
    }
    ask(a.srv.addr, "nope.example.test.", 1);
    for _ in 0..4 {
        assert_eq!(get(a.lb).0, 200);
    }
    assert_eq!(metric(&a, q), 3);
    assert_eq!(metric(&a, nx), 1);
    assert_eq!(metric(&a, east), 3);
    assert_eq!(metric(&a, &target), 2);
    let listener = "roundhouse_balancer_listener_requests_total{listener=\"app\",class=\"2xx\"}";
    assert_eq!(metric(&a, listener), 4);
    assert_eq!(
        metric(
            &a,
            "roundhouse_endpoint_ready{pool=\"web\",region=\"east\",endpoint=\"192.0.2.1\",mode=\"auto\"}"
        ),
        1
    );
    assert_eq!(
        metric(&a, "roundhouse_config_reloads_total{result=\"success\"}"),
        0
    );
    let (_, body) = request(a.admin, "GET", "/metrics", None);
    for family in [
        "# TYPE roundhouse_pool_failed_open_total counter",
        "# TYPE roundhouse_target_ready gauge",
        "# TYPE roundhouse_config_loaded_timestamp_seconds gauge",
    ] {
        assert!(body.contains(family), "{family} missing:\n{body}");
    }
    // The status document: shape and the same counts.
    let s = status(&a);
    assert_eq!(s["config"]["hash"].as_str().unwrap().len(), 16);
    assert!(s["config"]["loaded_at"].as_u64().unwrap() > 0);
    assert_eq!(s["dns"]["queries"], 4);
    assert_eq!(s["regions"][0]["name"], "east");
    assert_eq!(s["regions"][0]["ready"], 1);
    assert_eq!(s["regions"][1]["answers"], 3);
    let e = &s["pools"][0]["endpoints"][0];
    assert_eq!(
        (e["address"].as_str(), e["mode"].as_str()),
        (Some("192.0.2.1"), Some("auto"))
    );
    assert_eq!(e["ready"], true);
    let t = &s["target_groups"][0]["targets"][1];
    assert_eq!(t["address"], a.backends[1].addr.to_string());
    assert_eq!(
        (t["requests"].as_u64(), t["in_flight"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(t["ejected"], false);
}

#[test]
fn actions_need_the_token_take_effect_and_survive_a_reload() {
    let a = start(&format!("token = \"{TOKEN}\"\n"));
    let drain = "/v1/endpoints/web/192.0.2.1/drain";
    assert_eq!(request(a.admin, "POST", drain, None).0, 401);
    assert_eq!(request(a.admin, "POST", drain, Some("wrong")).0, 401);
    assert_eq!(dns_addresses(&a), ["192.0.2.1", "192.0.2.2"]);
    let (code, body) = request(a.admin, "POST", drain, Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(dns_addresses(&a), ["192.0.2.2"]);
    // Unknown endpoints and actions are refused.
    let unknown = "/v1/endpoints/web/192.0.2.9/drain";
    assert_eq!(request(a.admin, "POST", unknown, Some(TOKEN)).0, 404);
    let bad = "/v1/endpoints/web/192.0.2.1/reboot";
    assert_eq!(request(a.admin, "POST", bad, Some(TOKEN)).0, 404);
    // A forced-down target gets no requests.
    let down = format!("/v1/targets/app/{}/force-down", a.backends[0].addr);
    assert_eq!(request(a.admin, "POST", &down, None).0, 401);
    assert_eq!(request(a.admin, "POST", &down, Some(TOKEN)).0, 200);
    for _ in 0..6 {
        assert_eq!(get(a.lb), (200, "backend 1".to_string()));
    }
    let s = status(&a);
    assert_eq!(s["pools"][0]["endpoints"][0]["mode"], "drain");
    assert_eq!(s["target_groups"][0]["targets"][0]["mode"], "down");
    assert_eq!(s["target_groups"][0]["targets"][0]["ready"], false);
    assert_eq!(s["overrides"].as_array().unwrap().len(), 2);
    // A reload keeps the overrides.
    assert_eq!(request(a.admin, "POST", "/v1/reload", None).0, 401);
    let (code, body) = request(a.admin, "POST", "/v1/reload", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        metric(&a, "roundhouse_config_reloads_total{result=\"success\"}"),
        1
    );
    assert_eq!(dns_addresses(&a), ["192.0.2.2"]);
    for _ in 0..4 {
        assert_eq!(get(a.lb), (200, "backend 1".to_string()));
    }
    // Undrain and force-up give them back.
    let up = format!("/v1/targets/app/{}/force-up", a.backends[0].addr);
    assert_eq!(request(a.admin, "POST", &up, Some(TOKEN)).0, 200);
    let undrain = "/v1/endpoints/web/192.0.2.1/undrain";
    assert_eq!(request(a.admin, "POST", undrain, Some(TOKEN)).0, 200);
    assert_eq!(dns_addresses(&a), ["192.0.2.1", "192.0.2.2"]);
    let bodies: Vec<String> = (0..4).map(|_| get(a.lb).1).collect();
    assert!(bodies.contains(&"backend 0".to_string()), "{bodies:?}");
    // A broken file: the reload fails, is counted, and the previous configuration serves.
    std::fs::write(a._setup.config(), "[dns\n").unwrap();
    let (code, body) = request(a.admin, "POST", "/v1/reload", Some(TOKEN));
    assert_eq!(code, 422, "{body}");
    assert!(metric(&a, "roundhouse_config_reloads_total{result=\"failure\"}") >= 1);
    assert_eq!(dns_addresses(&a), ["192.0.2.1", "192.0.2.2"]);
}

#[test]
fn without_a_token_actions_are_disabled_and_private_reads_need_one() {
    let a = start("");
    let (code, body) = request(a.admin, "POST", "/v1/endpoints/web/192.0.2.1/drain", None);
    assert_eq!(code, 403);
    assert!(body.contains("actions disabled"), "{body}");
    assert_eq!(request(a.admin, "POST", "/v1/reload", None).0, 403);
    assert_eq!(dns_addresses(&a), ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(request(a.admin, "GET", "/v1/status", None).0, 200);
    assert_eq!(request(a.admin, "DELETE", "/v1/status", None).0, 405);
    drop(a);
    let a = start(&format!("token = \"{TOKEN}\"\npublic_reads = false\n"));
    for path in ["/v1/status", "/metrics"] {
        assert_eq!(request(a.admin, "GET", path, None).0, 401, "{path}");
        assert_eq!(request(a.admin, "GET", path, Some(TOKEN)).0, 200, "{path}");
    }
    // The dashboard page is public but shows nothing without the token.
    let (code, html) = request(a.admin, "GET", "/", None);
    assert_eq!(code, 200);
    assert!(html.contains("reads need the admin token"), "{html}");
    assert!(!html.contains("data-region=\"east\""), "{html}");
    let (code, html) = request(a.admin, "GET", "/", Some(TOKEN));
    assert_eq!(code, 200);
    assert!(html.contains("data-region=\"east\""), "{html}");
    // Opened as /#token=TOKEN, its script polls with the token and fills the page.
    if let Some(chromium) = chromium() {
        let dom = dump_dom(chromium, &format!("http://{}/#token={TOKEN}", a.admin));
        assert!(dom.contains("data-region=\"east\""), "{dom}");
        assert!(dom.contains("data-polled="), "{dom}");
    }
    // `roundhouse status` with the token prints the regions and targets.
    let out = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["status", "--admin", &a.admin.to_string(), "--token", TOKEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("east") && text.contains("west"), "{text}");
    assert!(text.contains(&a.backends[1].addr.to_string()), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["status", "--admin", &a.admin.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

/// `chromium` on the PATH, if installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The DOM of `url` after its script ran (virtual time lets the first poll happen).
fn dump_dom(chromium: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dashboard_shows_regions_and_health() {
    let a = start(&format!("token = \"{TOKEN}\"\n"));
    let drain = "/v1/endpoints/web/192.0.2.2/drain";
    assert_eq!(request(a.admin, "POST", drain, Some(TOKEN)).0, 200);
    let (code, html) = request(a.admin, "GET", "/", None);
    assert_eq!(code, 200);
    assert!(html.contains("data-region=\"east\"") && html.contains("data-region=\"west\""));
    assert!(html.contains("not ready (drain)"), "{html}");
    assert!(html.contains("setInterval(refresh, 2000)"));
    let Some(chromium) = chromium() else {
        println!("skipped: chromium not installed");
        return;
    };
    let url = format!("http://{}/", a.admin);
    let png = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    let profile = tempfile::tempdir().unwrap();
    let flags = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut shot = Command::new(chromium);
    flags(&mut shot);
    let out = shot
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot {}",
        png.display()
    );
    let dom = dump_dom(chromium, &url);
    assert!(
        dom.contains("data-region=\"east\"") && dom.contains("data-region=\"west\""),
        "{dom}"
    );
    assert!(dom.contains("1/1 endpoints ready"), "{dom}");
    assert!(dom.contains("not ready (drain)"), "{dom}");
    assert!(
        dom.contains("data-polled="),
        "the script never redrew the page: {dom}"
    );
    println!("screenshot: {}", png.display());
}
