//! The set of served zones, found by the longest matching origin.

use crate::dns::name::Name;
use crate::dns::zone::Zone;
use std::collections::HashMap;
use std::sync::Arc;

/// Every zone the server answers for, keyed by origin.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    zones: HashMap<Name, Arc<Zone>>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds or replaces a zone.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        self.zones.insert(zone.origin().clone(), zone);
    }

    /// The zone with this exact origin.
    pub fn get(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(origin)
    }

    /// The most specific zone that contains `name`, if any.
    pub fn find(&self, name: &Name) -> Option<&Arc<Zone>> {
        if self.zones.is_empty() {
            return None;
        }
        (0..=name.label_count())
            .rev()
            .find_map(|k| self.zones.get(&name.suffix(k)))
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
