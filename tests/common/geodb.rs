//! Writing small MaxMind-format city databases (tests and the `make_geodb` example): each
//! entry is `(network, country, continent, latitude, longitude)`, stored the way
//! GeoLite2-City describes places.

use serde::Serialize;

/// One network of a test database.
pub type Entry = (&'static str, &'static str, &'static str, f64, f64);

#[derive(Serialize)]
struct Iso<'a> {
    iso_code: &'a str,
}

#[derive(Serialize)]
struct Code<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct Place<'a> {
    country: Iso<'a>,
    continent: Code<'a>,
    location: Location,
}

/// Writes the entries as a `.mmdb` file.
pub fn write_database(path: &std::path::Path, entries: &[(String, Entry)]) {
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    for (net, (_, country, continent, latitude, longitude)) in entries {
        let place = Place {
            country: Iso { iso_code: country },
            continent: Code { code: continent },
            location: Location {
                latitude: *latitude,
                longitude: *longitude,
            },
        };
        w.insert(net.parse::<ipnet::IpNet>().expect("network"), &place)
            .expect("insert");
    }
    std::fs::write(path, w.to_bytes().expect("database")).expect("write database");
}

/// Entries with their own network strings.
pub fn entries(list: &[Entry]) -> Vec<(String, Entry)> {
    list.iter().map(|e| (e.0.to_string(), *e)).collect()
}
