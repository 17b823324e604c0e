//! `roundhouse check`: exit status and file:line messages.

use std::process::Command;

fn check(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roundhouse"))
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn sample_configuration_and_zone_pass() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (ok, out) = check(&["--config", &format!("{root}/config/roundhouse.toml")]);
    assert!(ok, "{out}");
    assert!(out.contains("zone example.test."), "{out}");
    let (ok, out) = check(&["--zone", &format!("{root}/zones/example.test.zone")]);
    assert!(ok, "{out}");
}

#[test]
fn broken_zone_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("bad.test.zone");
    std::fs::write(
        &zone,
        "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 10.0.0.300\n",
    )
    .unwrap();
    let (ok, out) = check(&["--zone", zone.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains(&format!("{}:4:", zone.display())), "{out}");
}

#[test]
fn broken_config_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("r.toml");
    std::fs::write(
        &cfg,
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"\"\nunknown_key = 1\n",
    )
    .unwrap();
    let (ok, out) = check(&["--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("r.toml:4: unknown field `unknown_key`"),
        "{out}"
    );
}
