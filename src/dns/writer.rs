//! Building responses: header, question echo, records with name compression, OPT, and a
//! size limit that lets the caller decide what truncation means.

use crate::dns::name::Name;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The message did not fit in the size limit; the writer is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A DNS message under construction.
pub struct MessageWriter {
    buf: Vec<u8>,
    limit: usize,
    counts: [u16; 4],
    section: usize,
    /// Hash of a lower-cased name suffix -> offset where it was written (the bytes there are
    /// compared before a pointer is used, so a hash collision costs compression, not
    /// correctness).
    names: HashMap<u64, u16, BuildHasherDefault<Passthrough>>,
    /// Keys of `names` in insertion order, so that a rollback can forget them.
    log: Vec<u64>,
}

/// The keys are hashes already: the map uses them as they are.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A point to roll a [`MessageWriter`] back to.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    len: usize,
    counts: [u16; 4],
    logged: usize,
}

impl MessageWriter {
    /// Starts a message with the given ID and flags (RCODE in the low four bits).
    pub fn new(id: u16, flags: u16, limit: usize) -> MessageWriter {
        let mut buf = Vec::with_capacity(limit.min(4096));
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
        MessageWriter {
            buf,
            limit,
            counts: [0; 4],
            section: 0,
            names: HashMap::default(),
            log: Vec::new(),
        }
    }

    /// Current size in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when only the header is written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= 12
    }

    /// Changes the size limit (e.g. after learning the client's EDNS buffer size).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Sets or clears flag bits in the header.
    pub fn set_flags(&mut self, set: u16, clear: u16) {
        let f = u16::from_be_bytes([self.buf[2], self.buf[3]]);
        let f = (f | set) & !clear;
        self.buf[2..4].copy_from_slice(&f.to_be_bytes());
    }

    /// Writes the question. The name is written exactly as the client sent it.
    pub fn question(&mut self, name: &Name, qtype: u16, qclass: u16) {
        self.section = 0;
        self.put_name(name.wire());
        self.buf.extend_from_slice(&qtype.to_be_bytes());
        self.buf.extend_from_slice(&qclass.to_be_bytes());
        self.counts[0] = 1;
    }

    /// Moves on to section 1 (answer), 2 (authority) or 3 (additional).
    pub fn begin_section(&mut self, section: usize) {
        debug_assert!((1..=3).contains(&section) && section >= self.section);
        self.section = section;
    }

    /// Appends one record to the current section. `compressible` lists offsets of names in
    /// `rdata` that may be compressed (RFC 3597 §4: only the RFC 1035 types).
    pub fn record(
        &mut self,
        owner: &Name,
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
        compressible: &[usize],
    ) -> Result<(), Full> {
        let cp = self.checkpoint();
        self.put_name(owner.wire());
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        let mut copied = 0;
        for &off in compressible {
            self.buf.extend_from_slice(&rdata[copied..off]);
            let name_len = wire_name_len(&rdata[off..]);
            self.put_name(&rdata[off..off + name_len]);
            copied = off + name_len;
        }
        self.buf.extend_from_slice(&rdata[copied..]);
        let rdlen = self.buf.len() - len_at - 2;
        if self.buf.len() > self.limit || rdlen > usize::from(u16::MAX) {
            self.rollback(cp);
            return Err(Full);
        }
        self.buf[len_at..len_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
        self.counts[self.section] += 1;
        Ok(())
    }

    /// The current state, to return to with [`MessageWriter::rollback`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.buf.len(),
            counts: self.counts,
            logged: self.log.len(),
        }
    }

    /// Forgets everything written since `cp` (records and compression targets).
    pub fn rollback(&mut self, cp: Checkpoint) {
        self.buf.truncate(cp.len);
        self.counts = cp.counts;
        for key in self.log.drain(cp.logged..) {
            self.names.remove(&key);
        }
    }

    /// Appends an OPT record (always fits: callers reserve room for it in the limit).
    pub fn opt(&mut self, udp_size: u16, extended_rcode: u8, options: &[u8]) {
        self.buf.push(0);
        self.buf.extend_from_slice(&41u16.to_be_bytes());
        self.buf.extend_from_slice(&udp_size.to_be_bytes());
        self.buf.extend_from_slice(&[extended_rcode, 0, 0, 0]);
        self.buf
            .extend_from_slice(&(options.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(options);
        self.counts[3] += 1;
    }

    /// Finishes the message: writes the section counts and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, c) in self.counts.iter().enumerate() {
            let at = 4 + 2 * i;
            self.buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        self.buf
    }

    /// Writes a name, reusing an earlier occurrence of its longest known suffix, and
    /// registers the new suffixes it wrote as compression targets.
    fn put_name(&mut self, wire: &[u8]) {
        // Label offsets, then each suffix's hash from the right (a suffix's hash covers its
        // own labels, lower-cased, and the hash of the rest).
        let mut starts = [0u8; 128];
        let mut n = 0;
        let mut pos = 0;
        while wire[pos] != 0 {
            starts[n] = pos as u8;
            n += 1;
            pos += 1 + usize::from(wire[pos]);
        }
        // Most names have few labels: their hashes stay on the stack.
        let (mut small, mut large) = ([0u64; 16], Vec::new());
        let hashes: &mut [u64] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
        for k in (0..n).rev() {
            let at = usize::from(starts[k]);
            for &b in &wire[at..=at + usize::from(wire[at])] {
                h = (h.rotate_left(5) ^ u64::from(b.to_ascii_lowercase()))
                    .wrapping_mul(0x517C_C1B7_2722_0A95);
            }
            hashes[k] = h;
        }
        for k in 0..n {
            let at = usize::from(starts[k]);
            let key = hashes[k];
            match self.names.get(&key) {
                Some(&target) if self.same_name(&wire[at..], usize::from(target)) => {
                    self.buf.extend_from_slice(&(0xC000 | target).to_be_bytes());
                    return;
                }
                Some(_) => {}
                None => {
                    let here = self.buf.len();
                    if here < 0x3FFF {
                        self.names.insert(key, here as u16);
                        self.log.push(key);
                    }
                }
            }
            let len = usize::from(wire[at]);
            self.buf.extend_from_slice(&wire[at..at + 1 + len]);
        }
        self.buf.push(0);
    }

    /// True when the name written at `at` (following compression pointers) equals `wire`,
    /// ignoring ASCII case.
    fn same_name(&self, wire: &[u8], mut at: usize) -> bool {
        let mut pos = 0;
        // Pointers only go backwards in a message this writer built; the bound is a guard.
        for _ in 0..256 {
            let Some(&b) = self.buf.get(at) else {
                return false;
            };
            if b & 0xC0 == 0xC0 {
                let Some(&lo) = self.buf.get(at + 1) else {
                    return false;
                };
                at = usize::from(u16::from_be_bytes([b & 0x3F, lo]));
                continue;
            }
            let len = usize::from(b);
            if wire[pos] != b {
                return false;
            }
            if len == 0 {
                return true;
            }
            let (Some(mine), Some(theirs)) = (
                wire.get(pos + 1..pos + 1 + len),
                self.buf.get(at + 1..at + 1 + len),
            ) else {
                return false;
            };
            if !mine.eq_ignore_ascii_case(theirs) {
                return false;
            }
            pos += 1 + len;
            at += 1 + len;
        }
        false
    }
}

/// Length of the uncompressed wire name at the start of `wire`.
fn wire_name_len(wire: &[u8]) -> usize {
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        pos += 1 + wire[pos] as usize;
    }
    (pos + 1).min(wire.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn compresses_owner_against_question() {
        let mut w = MessageWriter::new(7, 0x8400, 512);
        w.question(&name("WWW.example."), 1, 1);
        w.begin_section(1);
        w.record(&name("www.example."), 1, 1, 60, &[192, 0, 2, 1], &[])
            .unwrap();
        let m = w.finish();
        // header 12 + question 13+4 + owner pointer 2 + fixed 10 + rdata 4
        assert_eq!(m.len(), 12 + 17 + 2 + 10 + 4);
        assert_eq!(&m[29..31], &[0xC0, 12]);
        assert_eq!(&m[12..17], b"\x03WWW\x07");
    }

    #[test]
    fn compresses_rdata_names_and_rolls_back_when_full() {
        let mut w = MessageWriter::new(7, 0x8400, 60);
        w.question(&name("example."), 2, 1);
        w.begin_section(1);
        let ns = name("ns1.example.");
        w.record(&name("example."), 2, 1, 60, ns.wire(), &[0])
            .unwrap();
        let before = w.len();
        let big = vec![0u8; 100];
        assert_eq!(w.record(&name("example."), 16, 1, 60, &big, &[]), Err(Full));
        assert_eq!(w.len(), before);
        let m = w.finish();
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), 1);
        // ns1 + pointer to "example." in the question
        assert!(m.ends_with(&[3, b'n', b's', b'1', 0xC0, 12]));
    }
}
