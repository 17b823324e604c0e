//! Response rate limiting (RRL) for UDP answers, in the manner of BIND, NSD and Knot: a
//! spoofed-source flood must not turn the server into an amplifier aimed at a victim.
//!
//! Responses are counted per *account*: the client's network (`/24` for IPv4 and `/56` for
//! IPv6 by default), the class of the response (answer, no data, NXDOMAIN, referral, error)
//! and the name it is about (the query name; for NXDOMAIN the zone, so random subdomains of
//! one zone share an account; for errors no name). Each account is a token bucket credited
//! with `responses_per_second` tokens a second, holding at most one second's worth, and
//! debited once per response; while it is empty responses are not sent. Its balance may go
//! down to `-responses_per_second × window`, so a source that keeps flooding stays limited
//! for `window` after it stops. Of the responses withheld, every `slip`-th is sent as an
//! empty truncated answer (TC=1): a real resolver behind a spoofed network retries over TCP,
//! which RRL never limits, and gets its answer.
//!
//! The table is a fixed array of atomic words (no lock, no allocation per query): the
//! account's keyed hash picks a slot, a 16-bit tag in the slot tells whose it is, and a
//! different account simply takes the slot over (as NSD does). Memory is 8 bytes per slot.

use crate::config::RrlConfig;
use crate::dns::wire::flag;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// What to do with one UDP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Send an empty truncated response instead (the client should retry over TCP).
    Slip,
    /// Send nothing.
    Drop,
}

/// The class of a response, as RRL accounts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Answer,
    NoData,
    NxDomain,
    Referral,
    Error,
}

const BALANCE_BITS: u32 = 24;
const STAMP_BITS: u32 = 24;
const BALANCE_MASK: u64 = (1 << BALANCE_BITS) - 1;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;
/// Stored balances are offset by this much so that negative ones fit unsigned bits.
const BALANCE_OFFSET: i64 = 1 << (BALANCE_BITS - 1);
/// Largest `responses_per_second × window` the packed balance can hold.
pub const MAX_DEBT: u64 = (1 << (BALANCE_BITS - 1)) - 1;

/// The rate limiter: configuration, the slot table and the slip turn.
#[derive(Debug)]
pub struct Rrl {
    config: RrlConfig,
    slots: Vec<AtomicU64>,
    mask: u64,
    hasher: std::hash::RandomState,
    start: Instant,
    slip_turn: AtomicU64,
}

impl Rrl {
    /// A limiter with an empty table; `None` when `responses_per_second` is 0 (off).
    pub fn new(config: &RrlConfig) -> Option<Rrl> {
        if config.responses_per_second == 0 {
            return None;
        }
        let size = config.table_size.next_power_of_two();
        Some(Rrl {
            config: config.clone(),
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size as u64 - 1,
            hasher: std::hash::RandomState::new(),
            start: Instant::now(),
            slip_turn: AtomicU64::new(0),
        })
    }

    /// The configuration this limiter was built from.
    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// Decides for one UDP `reply` to `client`.
    pub fn check(&self, client: IpAddr, reply: &[u8]) -> Verdict {
        if self.config.exempt.iter().any(|n| n.contains(client)) {
            return Verdict::Send;
        }
        let Some((class, name)) = classify(reply) else {
            return Verdict::Send;
        };
        let mut h = self.hasher.build_hasher();
        prefix(client, &self.config).hash(&mut h);
        class.hash(&mut h);
        for b in name {
            h.write_u8(b.to_ascii_lowercase());
        }
        let hash = h.finish();
        let now = self.start.elapsed().as_secs();
        if self.take(hash, now) {
            return Verdict::Send;
        }
        let slip = u64::from(self.config.slip);
        if slip > 0
            && self
                .slip_turn
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(slip)
        {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Takes one token from the account `hash` at second `now`: true when it had one.
    fn take(&self, hash: u64, now: u64) -> bool {
        let slot = &self.slots[(hash & self.mask) as usize];
        let tag = hash >> 48;
        let rate = i64::from(self.config.responses_per_second);
        let floor = -(rate * self.config.window.as_secs().max(1) as i64);
        let stamp_now = now & STAMP_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        // A few attempts under contention; then let the response through rather than spin.
        for _ in 0..4 {
            let (t, stamp, stored) = unpack(current);
            let balance = if current == 0 || t != tag {
                rate
            } else {
                let elapsed = stamp_now.wrapping_sub(stamp) & STAMP_MASK;
                (stored + rate.saturating_mul(elapsed as i64)).min(rate)
            };
            let allowed = balance > 0;
            let next = pack(tag, stamp_now, (balance - 1).max(floor));
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return allowed,
                Err(actual) => current = actual,
            }
        }
        true
    }
}

fn pack(tag: u64, stamp: u64, balance: i64) -> u64 {
    let b = (balance + BALANCE_OFFSET) as u64 & BALANCE_MASK;
    // Never 0: 0 marks an unused slot (the balance bits of a real entry are never all 0
    // because the floor keeps balances above -BALANCE_OFFSET).
    (tag << 48) | ((stamp & STAMP_MASK) << BALANCE_BITS) | b
}

fn unpack(v: u64) -> (u64, u64, i64) {
    let tag = v >> 48;
    let stamp = (v >> BALANCE_BITS) & STAMP_MASK;
    let balance = (v & BALANCE_MASK) as i64 - BALANCE_OFFSET;
    (tag, stamp, balance)
}

/// The client's network as 16 bytes (address masked to the configured prefix) plus family.
fn prefix(ip: IpAddr, config: &RrlConfig) -> (bool, u128) {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let mask = |bits: u8, width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            (!0u128 >> (128 - width)) & !((1u128 << (width - u32::from(bits))) - 1)
        }
    };
    match ip {
        IpAddr::V4(v4) => (
            false,
            u128::from(u32::from(v4)) & mask(config.ipv4_prefix, 32),
        ),
        IpAddr::V6(v6) => (true, u128::from(v6) & mask(config.ipv6_prefix, 128)),
    }
}

/// The response class and the name its account is kept under (wire form, maybe mixed case).
fn classify(reply: &[u8]) -> Option<(Class, &[u8])> {
    if reply.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([reply[2], reply[3]]);
    let count = |i: usize| u16::from_be_bytes([reply[4 + 2 * i], reply[5 + 2 * i]]);
    let qname = (count(0) > 0).then(|| name_at(reply, 12)).flatten();
    let class = match flags & 0xF {
        0 if count(1) > 0 => Class::Answer,
        0 if flags & flag::AA == 0 && count(2) > 0 => Class::Referral,
        0 => Class::NoData,
        3 => Class::NxDomain,
        _ => Class::Error,
    };
    let name = match class {
        Class::Error => &[][..],
        // Random names under one zone count as one: the zone is the SOA's owner.
        Class::NxDomain => qname
            .and_then(|(_, end)| authority_owner(reply, end, count(1)))
            .unwrap_or(&[]),
        _ => qname.map(|(n, _)| n).unwrap_or(&[]),
    };
    Some((class, name))
}

/// An uncompressed name at `pos` (questions are never compressed): its bytes and the
/// offset after it.
fn name_at(msg: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let mut p = pos;
    loop {
        let len = usize::from(*msg.get(p)?);
        if len & 0xC0 != 0 {
            return None;
        }
        p += len + 1;
        if len == 0 {
            return Some((msg.get(pos..p)?, p));
        }
    }
}

/// Skips a possibly compressed name; the offset after it.
fn skip_name(msg: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let len = *msg.get(p)?;
        if len & 0xC0 == 0xC0 {
            return Some(p + 2);
        }
        p += usize::from(len) + 1;
        if len == 0 {
            return Some(p);
        }
    }
}

/// The owner of the first authority record (the zone's SOA in a negative answer), read
/// through one compression pointer into the question, as our writer compresses it.
fn authority_owner(msg: &[u8], question_name_end: usize, answers: u16) -> Option<&[u8]> {
    let mut p = question_name_end + 4;
    for _ in 0..answers {
        p = skip_name(msg, p)?;
        let rdlen = usize::from(u16::from_be_bytes([*msg.get(p + 8)?, *msg.get(p + 9)?]));
        p += 10 + rdlen;
    }
    let first = *msg.get(p)?;
    let at = if first & 0xC0 == 0xC0 {
        usize::from(u16::from_be_bytes([first, *msg.get(p + 1)?]) & 0x3FFF)
    } else {
        p
    };
    name_at(msg, at).map(|(n, _)| n)
}

/// The truncated stand-in for a withheld response: its header with TC set and no records
/// but the question.
pub fn slip_reply(reply: &[u8]) -> Vec<u8> {
    let end = if reply.len() >= 12 && reply[4..6] != [0, 0] {
        name_at(reply, 12).map_or(12, |(_, e)| (e + 4).min(reply.len()))
    } else {
        12.min(reply.len())
    };
    let mut out = reply[..end].to_vec();
    if out.len() >= 12 {
        out[2] |= (flag::TC >> 8) as u8;
        out[4..6].copy_from_slice(&u16::from(end > 12).to_be_bytes());
        out[6..12].fill(0);
    }
    out
}

#[cfg(test)]
mod tests;
