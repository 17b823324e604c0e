//! Writes a small MaxMind-format city database for demos and benchmarks (the project cannot
//! ship or download GeoLite2): `cargo run --example make_geodb -- OUT.mmdb`.
//! Networks: 198.51.100.0/24 US, 203.0.113.0/24 GB, 100.64.0.0/16 JP, 2001:db8:1::/48 DE,
//! plus 10.N.0.0/16 spread over US, GB and JP (N = 0..=255).

#[path = "../tests/common/geodb.rs"]
mod geodb;

use geodb::{Entry, entries, write_database};

const FIXED: [Entry; 4] = [
    ("198.51.100.0/24", "US", "NA", 38.9, -77.0),
    ("203.0.113.0/24", "GB", "EU", 51.5, -0.1),
    ("100.64.0.0/16", "JP", "AS", 35.7, 139.7),
    ("2001:db8:1::/48", "DE", "EU", 52.5, 13.4),
];

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: make_geodb OUT.mmdb");
        std::process::exit(2);
    };
    let mut list = entries(&FIXED);
    for n in 0..=255usize {
        let place = FIXED[n % 3];
        list.push((format!("10.{n}.0.0/16"), place));
    }
    write_database(std::path::Path::new(&out), &list);
    println!("wrote {out}");
}
