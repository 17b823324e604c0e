//! Writes a small MaxMind-format city database for demos and benchmarks (the project cannot
//! ship or download GeoLite2): `cargo run --example make_geodb -- OUT.mmdb`.
//! Networks: 198.51.100.0/24 US, 203.0.113.0/24 GB, 100.64.0.0/16 JP, 2001:db8:1::/48 DE,
//! plus 10.N.0.0/16 spread over US, GB and JP (N = 0..=255).

use serde::Serialize;

#[derive(Serialize)]
struct Iso {
    iso_code: String,
}
#[derive(Serialize)]
struct Code {
    code: String,
}
#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}
#[derive(Serialize)]
struct Place {
    country: Iso,
    continent: Code,
    location: Location,
}

const PLACES: [(&str, &str, f64, f64); 3] = [
    ("US", "NA", 38.9, -77.0),
    ("GB", "EU", 51.5, -0.1),
    ("JP", "AS", 35.7, 139.7),
];

fn place(country: &str, continent: &str, lat: f64, lon: f64) -> Place {
    Place {
        country: Iso {
            iso_code: country.into(),
        },
        continent: Code {
            code: continent.into(),
        },
        location: Location {
            latitude: lat,
            longitude: lon,
        },
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: make_geodb OUT.mmdb")?;
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    let fixed = [
        ("198.51.100.0/24", 0),
        ("203.0.113.0/24", 1),
        ("100.64.0.0/16", 2),
    ];
    for (net, i) in fixed {
        let (c, k, lat, lon) = PLACES[i];
        w.insert(net.parse::<ipnet::IpNet>()?, &place(c, k, lat, lon))?;
    }
    w.insert(
        "2001:db8:1::/48".parse::<ipnet::IpNet>()?,
        &place("DE", "EU", 52.5, 13.4),
    )?;
    for n in 0..=255u32 {
        let (c, k, lat, lon) = PLACES[(n % 3) as usize];
        w.insert(
            format!("10.{n}.0.0/16").parse::<ipnet::IpNet>()?,
            &place(c, k, lat, lon),
        )?;
    }
    std::fs::write(&out, w.to_bytes()?)?;
    println!("wrote {out}");
    Ok(())
}
