//! The fuzz corpus and crash reproducers as regression tests on stable: every file in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same function
//! the `cargo fuzz` target calls (`fuzz/harness.rs`), which panics on a bug. Query replies
//! must decode as well-formed DNS messages within their transport's size limit.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("dns_query", harness::dns_query),
    ("zone_file", harness::zone_file),
    ("config", harness::config),
    ("http_heads", harness::http_heads),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every file of `kind` (corpus or regressions) through its target; returns how many
/// ran and the failures as `path: panic message`.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut ran = 0;
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        for path in files(&root.join(name)) {
            let data = std::fs::read(&path).expect("read corpus file");
            ran += 1;
            if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", path.display()));
            }
        }
    }
    (ran, failures)
}

#[test]
fn corpus_runs_clean() {
    let (ran, failures) = replay("corpus");
    assert!(ran >= 100, "expected the seed corpus, found {ran} files");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn crash_reproducers_stay_fixed() {
    let (_, failures) = replay("regressions");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The checks themselves catch what they claim to: a reply with a wrong ID, one over the
/// UDP limit, and one with bytes after its last record.
#[test]
fn reply_checks_reject_broken_replies() {
    use roundhouse::dns::name::Name;
    use roundhouse::dns::respond::Transport;
    let name = Name::parse("www.example.test.", None).unwrap();
    let query = harness::query(7, &name, 1, false);
    let mut good = query.clone();
    good[2] |= 0x80;
    harness::check_reply(&query, &good, Transport::Udp);
    let broken: [(&str, Vec<u8>); 3] = [
        ("ID", {
            let mut r = good.clone();
            r[1] ^= 1;
            r
        }),
        ("over the limit", {
            let mut r = good.clone();
            r[7] = 1; // ANCOUNT 1: a TXT record that makes the reply 600 bytes
            r.extend_from_slice(&[0, 0, 16, 0, 1, 0, 0, 0, 0, 2, 76]);
            r.extend(std::iter::repeat_n(0u8, 588));
            r
        }),
        ("trailing bytes", {
            let mut r = good.clone();
            r.push(0);
            r
        }),
    ];
    for (what, reply) in broken {
        let caught = std::panic::catch_unwind(|| {
            harness::check_reply(&query, &reply, Transport::Udp);
        });
        assert!(caught.is_err(), "a reply with a broken {what} passed");
    }
}
