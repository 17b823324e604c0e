//! Editing zones and configuration while the server runs: good edits take effect, broken
//! ones are rejected with file:line and the last good version keeps serving.

mod common;
use common::*;

const ZONE: &str = "$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn www(srv: &Server) -> Vec<String> {
    answers(&ask(srv.addr, "www.example.test", 1))
}

#[test]
fn edit_corrupt_fix_cycle() {
    let setup = Setup::new(CONFIG, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    assert_eq!(www(&srv), ["www.example.test. A 192.0.2.1"]);

    // A good edit (serial bumped) is served without a restart.
    std::fs::write(
        setup.zone("example.test.zone"),
        ZONE.replace(" 1 3600", " 2 3600")
            .replace("192.0.2.1", "192.0.2.2"),
    )
    .unwrap();
    srv.eventually("edit served", || {
        www(&srv) == ["www.example.test. A 192.0.2.2"]
    });

    // A broken edit is rejected with file:line and the previous version keeps serving.
    std::fs::write(
        setup.zone("example.test.zone"),
        ZONE.replace("www A 192.0.2.1", "www A 192.0.2.999"),
    )
    .unwrap();
    srv.wait_log("example.test.zone:5:");
    assert_eq!(www(&srv), ["www.example.test. A 192.0.2.2"]);

    // Fixing it (even without bumping the serial) serves the new content, with a warning.
    std::fs::write(
        setup.zone("example.test.zone"),
        ZONE.replace(" 1 3600", " 2 3600")
            .replace("192.0.2.1", "192.0.2.3"),
    )
    .unwrap();
    srv.eventually("fix served", || {
        www(&srv) == ["www.example.test. A 192.0.2.3"]
    });
    srv.wait_log("SOA serial did not");
}

#[test]
fn new_and_removed_zone_files() {
    let setup = Setup::new(CONFIG, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    assert_eq!(
        rcode(&ask(srv.addr, "www.other.test", 1)),
        hickory_proto::op::ResponseCode::Refused
    );
    std::fs::write(setup.zone("other.test.zone"), ZONE).unwrap();
    srv.eventually("new zone served", || {
        answers(&ask(srv.addr, "www.other.test", 1)) == ["www.other.test. A 192.0.2.1"]
    });
    std::fs::remove_file(setup.zone("other.test.zone")).unwrap();
    srv.eventually("zone removed", || {
        rcode(&ask(srv.addr, "www.other.test", 1)) == hickory_proto::op::ResponseCode::Refused
    });
}

#[test]
fn broken_config_edit_keeps_serving() {
    let setup = Setup::new(CONFIG, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    std::fs::write(setup.config(), format!("{CONFIG}query_log = maybe\n")).unwrap();
    srv.wait_log("roundhouse.toml:4:");
    assert_eq!(www(&srv), ["www.example.test. A 192.0.2.1"]);
    std::fs::write(setup.config(), format!("{CONFIG}query_log = true\n")).unwrap();
    srv.eventually("query log on", || {
        www(&srv);
        srv.log.lock().unwrap().contains("name=www.example.test.")
    });
}

#[test]
fn sighup_reloads() {
    let setup = Setup::new(CONFIG, &[("example.test.zone", ZONE)]);
    let srv = Server::start(&setup.config());
    // Write the file with the same size and restore its old modification time, so only a
    // forced reload (SIGHUP) can notice.
    let path = setup.zone("example.test.zone");
    let old = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, ZONE.replace("192.0.2.1", "192.0.2.7")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    srv.eventually("SIGHUP reload", || {
        www(&srv) == ["www.example.test. A 192.0.2.7"]
    });
}
