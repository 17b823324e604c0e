//! A fast hasher for maps whose keys the configuration decides (zone origins, bound names,
//! probe keys, zones of the query counters). Queries only look such keys up, so no one
//! outside can fill these maps with colliding keys: the protection std's SipHash gives is
//! not needed there, and its cost is (a few of these lookups are made per query). Maps keyed
//! by what clients send keep SipHash with a random key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Multiply-rotate hashing of 8-byte words (the scheme of rustc's FxHasher) with a final
/// mix (MurmurHash3's), so that both the low bits (the bucket) and the high bits (the tag) of the result
/// depend on every input bit.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length tells "a" from "a\0".
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }

    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    fn finish(&self) -> u64 {
        // MurmurHash3's 64-bit finalizer.
        let mut h = self.0;
        h = (h ^ (h >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h = (h ^ (h >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn hash(bytes: &[u8]) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(bytes)
    }

    #[test]
    fn spreads_similar_keys_over_buckets_and_tags() {
        // Names that differ in one byte, as zone origins and bound names do.
        let keys: Vec<Vec<u8>> = (0..4096u32)
            .map(|i| format!("host-{i}.example.test.").into_bytes())
            .collect();
        let mut buckets = std::collections::HashSet::new();
        let mut tags = std::collections::HashSet::new();
        for k in &keys {
            let h = hash(k);
            buckets.insert(h & 4095);
            tags.insert(h >> 57);
        }
        assert!(
            buckets.len() > 2400,
            "{} of 4096 buckets used",
            buckets.len()
        );
        assert_eq!(tags.len(), 128);
        assert_ne!(hash(b"a"), hash(b"a\0"));
    }
}
