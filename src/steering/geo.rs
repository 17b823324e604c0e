//! The geo database: a MaxMind-format (`.mmdb`) country or city database, as GeoLite2 and
//! DB-IP publish them. Looked up once per steered query (a kept ECS query keeps its ranking
//! per database [`GeoDb::version`]); the matching network's prefix length becomes the ECS
//! scope of the answer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Versions handed to loaded databases: unique in the process, never 0.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

/// What the database knows about an address (the codes point into the loaded database:
/// a lookup allocates nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place<'a> {
    /// ISO 3166 country code, as the database spells it (compare ignoring ASCII case).
    pub country: Option<&'a str>,
    /// Continent code (AF, AN, AS, EU, NA, OC, SA), as the database spells it.
    pub continent: Option<&'a str>,
    /// Latitude and longitude.
    pub coordinates: Option<(f64, f64)>,
    /// Prefix length of the database network that holds the address (with or without data).
    pub prefix: u8,
}

#[derive(serde::Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Code<'a>>,
    #[serde(borrow, default)]
    continent: Option<Code<'a>>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(serde::Deserialize, Default)]
struct Code<'a> {
    #[serde(default)]
    iso_code: Option<&'a str>,
    #[serde(default)]
    code: Option<&'a str>,
}

#[derive(serde::Deserialize, Default)]
struct Location {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

/// A loaded database and the file it came from.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
    stamp: Option<SystemTime>,
    version: u64,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("type", &self.reader.metadata().database_type)
            .finish()
    }
}

/// The database could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot read the geo database: {message}")]
pub struct GeoError {
    /// File.
    pub path: String,
    /// Cause.
    pub message: String,
}

impl GeoDb {
    /// Opens a database file.
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let err = |m: String| GeoError {
            path: path.display().to_string(),
            message: m,
        };
        let stamp = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| err(e.to_string()))?;
        Ok(GeoDb {
            reader,
            path: path.to_path_buf(),
            stamp,
            version: VERSIONS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// True when the file on disk is not the one loaded.
    pub fn is_stale(&self) -> bool {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            != self.stamp
    }

    /// A number no other database loaded by this process has (what was derived from one
    /// database is known to be stale when the number differs).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks an address up; `None` only when the database cannot answer at all.
    pub fn place(&self, addr: IpAddr) -> Option<Place<'_>> {
        let found = self.reader.lookup(addr).ok()?;
        let prefix = found.network().ok().map(|n| n.prefix()).unwrap_or(0);
        let record: Record<'_> = found.decode().ok().flatten().unwrap_or_default();
        fn code<'a>(c: Option<Code<'a>>) -> Option<&'a str> {
            c.and_then(|c| c.iso_code.or(c.code))
        }
        let coordinates = record
            .location
            .and_then(|l| Some((l.latitude?, l.longitude?)));
        Some(Place {
            country: code(record.country),
            continent: code(record.continent),
            coordinates,
            prefix,
        })
    }
}
