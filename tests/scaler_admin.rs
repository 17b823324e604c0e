//! The scaler's admin endpoints through the real binary: `GET /v1/scaling-groups` shows the
//! group, its instances and activities; `POST /v1/scaling-groups/NAME/desired` scales it with
//! the admin token and refuses without it or outside [min, max]; `.../capacity` moves min and
//! max, `.../instance-refresh` replaces every instance, launching before draining.

mod common;
use common::http::send;
use common::*;
use serde_json::{Value, json};
use std::net::SocketAddr;

const TOKEN: &str = "s3cret-token";
const ZONE: (&str, &str) = (
    "example.test.zone",
    "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n",
);

fn config() -> String {
    format!(
        "{CONFIG}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         [target_group.web]\nalgorithm = \"round-robin\"\nderegistration_delay = \"2s\"\n\
         [[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\ntarget_group = \"web\"\n\
         [[scaling_group]]\nname = \"web\"\nmin = 1\nmax = 3\ntarget_groups = [\"web\"]\n\
         period = \"1s\"\ninstance_warmup = \"1s\"\n\
         [scaling_group.launch_template]\n"
    )
}

fn post(admin: SocketAddr, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let r = send(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    (r.status, r.body)
}

fn groups(admin: SocketAddr) -> Value {
    let r = send(
        admin,
        "GET /v1/scaling-groups HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// Instances of the first group in `state`.
fn in_state(v: &Value, state: &str) -> usize {
    v["groups"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == state)
        .count()
}

#[test]
fn scaling_groups_are_listed_and_scaled_through_the_admin_server() {
    let setup = Setup::new(&config(), &[ZONE]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    srv.eventually("one instance in service", || {
        in_state(&groups(admin), "in-service") == 1
    });
    let v = groups(admin);
    let g = &v["groups"][0];
    assert_eq!(
        (&g["name"], &g["min"], &g["desired"], &g["max"]),
        (
            &Value::from("web"),
            &Value::from(1),
            &Value::from(1),
            &Value::from(3)
        ),
        "{v}"
    );
    assert_eq!(g["activities"][0]["status"], "Successful", "{v}");
    assert!(
        g["activities"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Launching a new instance: web-"),
        "{v}"
    );

    let path = "/v1/scaling-groups/web/desired";
    assert_eq!(post(admin, path, None, "{\"desired\": 2}").0, 401);
    assert_eq!(post(admin, path, Some("wrong"), "{\"desired\": 2}").0, 401);
    let (status, body) = post(admin, path, Some(TOKEN), "{\"desired\": 4}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("outside min 1 and max 3"), "{body}");
    assert_eq!(post(admin, path, Some(TOKEN), "{\"desired\": -1}").0, 400);
    assert_eq!(post(admin, path, Some(TOKEN), "{\"count\": 2}").0, 400);
    assert_eq!(post(admin, "/v1/scaling-groups", Some(TOKEN), "{}").0, 405);
    assert_eq!(
        post(admin, "/v1/scaling-groups/web/other", Some(TOKEN), "{}").0,
        404
    );
    let nope = "/v1/scaling-groups/nope/desired";
    assert_eq!(post(admin, nope, Some(TOKEN), "{\"desired\": 2}").0, 404);
    assert_eq!(groups(admin)["groups"][0]["desired"], 1, "nothing changed");

    let (status, body) = post(admin, path, Some(TOKEN), "{\"desired\": 2}");
    assert_eq!(status, 200, "{body}");
    srv.eventually("two instances in service", || {
        in_state(&groups(admin), "in-service") == 2
    });
    let v = groups(admin);
    let newest = v["groups"][0]["activities"][0]["cause"].as_str().unwrap();
    assert!(
        newest.contains(
            "a user request explicitly set group desired capacity changing the desired \
             capacity from 1 to 2."
        ),
        "{v}"
    );

    assert_eq!(post(admin, path, Some(TOKEN), "{\"desired\": 1}").0, 200);
    srv.eventually("back to one instance after the drain", || {
        let v = groups(admin);
        v["groups"][0]["instances"].as_array().unwrap().len() == 1
            && in_state(&v, "in-service") == 1
    });
    let v = groups(admin);
    let terminated = v["groups"][0]["activities"][0].clone();
    assert!(
        terminated["description"]
            .as_str()
            .unwrap()
            .starts_with("Terminating instance: web-"),
        "{v}"
    );
    assert_eq!(terminated["status"], "Successful", "{v}");
    // The same picture in the metrics.
    let m = common::http::send(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    )
    .body;
    for line in [
        "roundhouse_scaler_desired_capacity{group=\"web\"} 1",
        "roundhouse_scaler_instances{group=\"web\",state=\"in-service\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "no {line} in\n{m}");
    }
    let started: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("roundhouse_scaler_activities_total{group=\"web\"} "))
        .and_then(|v| v.parse().ok())
        .expect("activities counter");
    assert!(started >= 3, "launch, launch, terminate: {started}");
    // And on the status document and the dashboard.
    let get = |path: &str| {
        common::http::send(
            admin,
            &format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
        )
        .body
    };
    let status: Value = serde_json::from_str(&get("/v1/status")).unwrap();
    let g = &status["scaling_groups"][0];
    assert_eq!(
        (&g["name"], &g["desired"], &g["in_service"]),
        (&json!("web"), &json!(1), &json!(1))
    );
    assert!(
        g["activities"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Terminating")
    );
    let page = get("/");
    assert!(page.contains("<h2>Scaling groups</h2>") && page.contains("data-group=\"web\""));
    assert!(
        page.contains("Terminating instance: web-"),
        "latest activity on the page"
    );
    // And in `roundhouse status`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .args(["status", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SCALING GROUP"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("web ") && l.ends_with("       1        0")),
        "web: desired 1, in service 1, draining 0\n{text}"
    );
    assert!(text.contains("Terminating instance: web-"), "{text}");
}

/// Ids of the first group's instances in service.
fn serving(v: &Value) -> Vec<String> {
    let all = v["groups"][0]["instances"].as_array().unwrap();
    let up = all.iter().filter(|i| i["state"] == "in-service");
    up.map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn capacity_limits_and_instance_refresh_through_the_admin_server() {
    let setup = Setup::new(&config(), &[ZONE]);
    let srv = Server::start(&setup.config());
    let admin = srv.logged_addr("admin listening", "addr=");
    let capacity = "/v1/scaling-groups/web/capacity";
    let refresh = "/v1/scaling-groups/web/instance-refresh";
    assert_eq!(post(admin, capacity, None, "{\"max\": 2}").0, 401);
    assert_eq!(post(admin, refresh, None, "").0, 401);
    let (status, body) = post(admin, capacity, Some(TOKEN), "{\"min\": 3, \"max\": 2}");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("min 3 is above max 2"), "{body}");
    assert_eq!(post(admin, capacity, Some(TOKEN), "{\"size\": 2}").0, 400);
    assert_eq!(post(admin, refresh, Some(TOKEN), "{\"x\": 1}").0, 400);

    let (status, body) = post(admin, capacity, Some(TOKEN), "{\"min\": 2, \"max\": 2}");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, json!({"group": "web", "min": 2, "desired": 2, "max": 2}));
    srv.eventually("two instances in service", || {
        serving(&groups(admin)).len() == 2
    });
    let old = serving(&groups(admin));

    let (status, body) = post(admin, refresh, Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"total\":2"), "{body}");
    let (status, body) = post(admin, refresh, Some(TOKEN), "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("already in progress"), "{body}");
    let mut fewest = usize::MAX;
    srv.eventually("every instance replaced", || {
        let v = groups(admin);
        let now = serving(&v);
        fewest = fewest.min(now.len());
        v["groups"][0]["refresh"].is_null() && now.iter().all(|id| !old.contains(id))
    });
    assert!(fewest >= 2, "never below the desired capacity: {fewest}");
    let v = groups(admin);
    let refresh = v["groups"][0]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["description"] == "Instance refresh")
        .cloned()
        .unwrap_or_default();
    assert_eq!(refresh["status"], "Successful", "{v}");
}
