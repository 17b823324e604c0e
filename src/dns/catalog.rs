//! The set of served zones, found by the longest matching origin.

use crate::dns::name::Name;
use crate::dns::zone::Zone;
use crate::hash::FastMap;
use std::sync::Arc;

/// Every zone the server answers for, keyed by origin (lower-cased wire form, so that a
/// query name's suffixes are looked up as slices, without building names).
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    zones: FastMap<Box<[u8]>, Arc<Zone>>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds or replaces a zone.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        let key = zone.origin().wire().to_ascii_lowercase().into_boxed_slice();
        self.zones.insert(key, zone);
    }

    /// The zone with this exact origin.
    pub fn get(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(&*origin.wire().to_ascii_lowercase())
    }

    /// The most specific zone that contains `name`, if any.
    pub fn find(&self, name: &Name) -> Option<&Arc<Zone>> {
        if self.zones.is_empty() {
            return None;
        }
        let wire = name.wire();
        let mut lower = [0u8; 255];
        let lower = &mut lower[..wire.len().min(255)];
        lower.copy_from_slice(&wire[..lower.len()]);
        lower.make_ascii_lowercase();
        // Longest first: the name itself, then each suffix down to the root.
        let mut pos = 0;
        loop {
            if let Some(zone) = self.zones.get(&lower[pos..]) {
                return Some(zone);
            }
            match lower.get(pos) {
                Some(&len) if len != 0 => pos += 1 + usize::from(len),
                _ => return None,
            }
        }
    }

    /// True when both hold the same zone objects (a reload that changed no zone keeps
    /// them: the loader reuses a zone whose files did not change).
    pub fn same_zones(&self, other: &Catalog) -> bool {
        self.zones.len() == other.zones.len()
            && self
                .zones
                .iter()
                .all(|(k, z)| other.zones.get(k).is_some_and(|o| Arc::ptr_eq(z, o)))
    }

    /// All zones.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// True when no zone is loaded.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}
