//! Zone files -> [`Catalog`]: finds the configured zone files, parses the ones that changed,
//! keeps the last good version of any zone whose new text is broken, and reports what changed
//! so that secondaries can be notified.

use crate::config::{Config, DnsConfig, EMBEDDED_ZONE};
use crate::dns::catalog::Catalog;
use crate::dns::name::Name;
use crate::dns::zone::Zone;
use crate::dns::zonefile::{ZoneFileError, load_zone_file, parse_zone_text};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A zone to load: its origin and file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSource {
    /// Apex.
    pub origin: Name,
    /// The zone file; `None` for the zone compiled into the binary.
    pub file: Option<PathBuf>,
}

/// Why a zone (or the zones directory) could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The zone text is wrong.
    #[error(transparent)]
    Parse(#[from] ZoneFileError),
    /// The zone has no SOA.
    #[error("{file}:1: {message}")]
    Zone {
        /// File.
        file: String,
        /// What.
        message: String,
    },
    /// The zones directory cannot be read.
    #[error("{0}: cannot read the zones directory: {1}")]
    Dir(String, String),
}

/// The zones a configuration asks for: every `NAME.zone` in `zones_dir` plus the listed
/// ones. The embedded configuration falls back to the built-in zone when `zones/` is absent.
pub fn zone_sources(config: &Config) -> Result<Vec<ZoneSource>, LoadError> {
    let dns: &DnsConfig = &config.dns;
    let mut out = Vec::new();
    if let Some(dir) = &dns.zones_dir {
        if config.path.is_none() && !dir.is_dir() {
            let origin = Name::parse(EMBEDDED_ZONE.0, None).expect("valid origin");
            out.push(ZoneSource { origin, file: None });
        } else {
            out.extend(scan_dir(dir)?);
        }
    }
    for z in &dns.zones {
        out.retain(|s: &ZoneSource| s.origin != z.origin);
        out.push(ZoneSource {
            origin: z.origin.clone(),
            file: Some(z.file.clone()),
        });
    }
    Ok(out)
}

fn scan_dir(dir: &Path) -> Result<Vec<ZoneSource>, LoadError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LoadError::Dir(dir.display().to_string(), e.to_string()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".zone"))
        else {
            continue;
        };
        if stem.starts_with('.') || !path.is_file() {
            continue;
        }
        match Name::parse(&format!("{stem}."), None) {
            Ok(origin) => out.push(ZoneSource {
                origin,
                file: Some(path),
            }),
            Err(e) => {
                tracing::warn!(file = %path.display(), "skipped: file name is not a zone name: {e}")
            }
        }
    }
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    Ok(out)
}

/// Modification stamps of every file a zone was read from ($INCLUDEs too).
type Stamps = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// One loaded zone and what it was read from.
#[derive(Debug, Clone)]
struct Loaded {
    zone: Arc<Zone>,
    file: Option<PathBuf>,
    stamps: Stamps,
}

/// What one pass of [`ZoneLoader::load`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Zones whose content changed (or that are new): origin and serial.
    pub changed: Vec<(Name, u32)>,
    /// Zones that failed to load (the previous version, if any, is still served).
    pub errors: Vec<LoadError>,
}

/// Keeps the loaded zones between reloads.
#[derive(Debug, Default)]
pub struct ZoneLoader {
    loaded: HashMap<Name, Loaded>,
}

impl ZoneLoader {
    /// An empty loader.
    pub fn new() -> ZoneLoader {
        ZoneLoader::default()
    }

    /// Loads the sources into a new catalog. Files whose stamps did not change are not read
    /// again unless `force`; a zone that fails keeps its previous version.
    pub fn load(&mut self, sources: &[ZoneSource], force: bool) -> (Catalog, LoadReport) {
        let mut report = LoadReport::default();
        let mut next = HashMap::new();
        for src in sources {
            let prev = self.loaded.get(&src.origin).filter(|p| p.file == src.file);
            if let Some(p) = prev
                && !force
                && p.stamps.iter().all(|(f, s)| stamp(f) == *s)
            {
                next.insert(src.origin.clone(), p.clone());
                continue;
            }
            match read_zone(src) {
                Ok(fresh) => {
                    let same = prev.is_some_and(|p| p.zone.digest() == fresh.zone.digest());
                    if let Some(p) = prev.filter(|_| !same)
                        && p.zone.serial() == fresh.zone.serial()
                    {
                        tracing::warn!(zone = %src.origin, serial = fresh.zone.serial(), "zone content changed but its SOA serial did not: secondaries will not pick up the change");
                    }
                    if !same {
                        report
                            .changed
                            .push((src.origin.clone(), fresh.zone.serial()));
                    }
                    let kept = if same {
                        Loaded {
                            stamps: fresh.stamps,
                            ..prev.cloned().expect("same implies prev")
                        }
                    } else {
                        fresh
                    };
                    next.insert(src.origin.clone(), kept);
                }
                Err(e) => {
                    if let Some(p) = self.loaded.get(&src.origin) {
                        next.insert(src.origin.clone(), p.clone());
                    }
                    report.errors.push(e);
                }
            }
        }
        self.loaded = next;
        let mut catalog = Catalog::new();
        for l in self.loaded.values() {
            catalog.insert(l.zone.clone());
        }
        (catalog, report)
    }
}

fn read_zone(src: &ZoneSource) -> Result<Loaded, LoadError> {
    let (records, file) = match &src.file {
        Some(path) => (load_zone_file(path, &src.origin)?, Some(path.clone())),
        None => (
            parse_zone_text(
                EMBEDDED_ZONE.1,
                Path::new("<embedded>/example.test.zone"),
                &src.origin,
            )?,
            None,
        ),
    };
    // The zone file and its $INCLUDEs (records of one file come in runs: skip repeats
    // before sorting, a big zone has one file for a million records).
    let mut files: Vec<&Path> = file.as_deref().into_iter().collect();
    for r in &records {
        if files.last() != Some(&&*r.source.file) {
            files.push(&r.source.file);
        }
    }
    files.sort();
    files.dedup();
    files.retain(|f| f.is_file());
    let stamps = files
        .into_iter()
        .map(|f| (f.to_path_buf(), stamp(f)))
        .collect();
    let name = file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "<embedded>".into());
    let zone = Zone::new(src.origin.clone(), records).map_err(|e| LoadError::Zone {
        file: name,
        message: e.to_string(),
    })?;
    Ok(Loaded {
        zone: Arc::new(zone),
        file,
        stamps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_configuration_falls_back_to_the_built_in_zone() {
        let mut config = Config::embedded();
        config.dns.zones_dir = Some(PathBuf::from("/nonexistent/zones"));
        let sources = zone_sources(&config).unwrap();
        assert_eq!(
            sources,
            vec![ZoneSource {
                origin: Name::parse("example.test.", None).unwrap(),
                file: None
            }]
        );
        let (catalog, report) = ZoneLoader::new().load(&sources, true);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let zone = catalog
            .find(&Name::parse("www.example.test.", None).unwrap())
            .expect("zone");
        assert!(zone.record_count() > 10);
    }

    #[test]
    fn a_file_configuration_with_a_missing_directory_is_an_error() {
        let mut config = Config::embedded();
        config.path = Some(PathBuf::from("/etc/roundhouse.toml"));
        config.dns.zones_dir = Some(PathBuf::from("/nonexistent/zones"));
        let err = zone_sources(&config).unwrap_err().to_string();
        assert!(
            err.starts_with("/nonexistent/zones: cannot read the zones directory"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_edit_keeps_the_last_good_zone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.test.zone");
        let good = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
        std::fs::write(&path, good).unwrap();
        let src = [ZoneSource {
            origin: Name::parse("a.test.", None).unwrap(),
            file: Some(path.clone()),
        }];
        let mut loader = ZoneLoader::new();
        let (first, report) = loader.load(&src, false);
        assert_eq!(report.changed.len(), 1);
        std::fs::write(&path, good.replace("192.0.2.1", "192.0.2.300")).unwrap();
        let (second, report) = loader.load(&src, true);
        assert_eq!(report.errors.len(), 1);
        assert!(
            report.errors[0].to_string().contains("a.test.zone:4:"),
            "{}",
            report.errors[0]
        );
        let origin = Name::parse("a.test.", None).unwrap();
        assert!(Arc::ptr_eq(
            first.get(&origin).unwrap(),
            second.get(&origin).unwrap()
        ));
        // Unchanged content read again (forced) is not reported as a change, and the zone
        // object stays the same (the UDP workers' kept replies survive such a reload).
        std::fs::write(&path, good).unwrap();
        let (third, report) = loader.load(&src, true);
        assert!(report.changed.is_empty() && report.errors.is_empty());
        assert!(third.same_zones(&first) && !third.same_zones(&Catalog::new()));
        std::fs::write(&path, good.replace("192.0.2.1", "192.0.2.2")).unwrap();
        let (fourth, _) = loader.load(&src, true);
        assert!(!fourth.same_zones(&third));
    }
}
