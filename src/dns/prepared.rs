//! Replies kept by one UDP worker, so that a query it has answered before costs a hash
//! lookup instead of decoding, finding the zone, walking its names and encoding.
//!
//! The key is the query's bytes after the message ID: flags, question (with the spelling
//! of its name), EDNS size and options. Two kinds of reply are kept:
//! - a reply that depends on nothing else while the snapshots stay (every static answer,
//!   every error) is kept whole; a hit copies it and writes the query's ID;
//! - a reply for a name bound to a pool keeps the decoded query instead, with the CNAME
//!   chain that led to the bound name if there is one: a hit asks the pool afresh (health,
//!   rotation, steering for this client) and encodes that answer; the common case (the
//!   query name itself bound, addresses that fit) is written straight from the pool's
//!   addresses.
//!
//! Every reply kept under an older
//! [`DnsState::generation`] is dropped at the next query, so zone and pool reloads show at
//! once. At most [`MAX_ENTRIES`] replies and [`MAX_BYTES`] are kept; the map is emptied
//! when it is full (a flood of distinct names costs an insertion per query, and then only
//! churns). Clients choose the keys, so they are hashed with SipHash under a random key.

use crate::dns::metrics::CountPlace;
use crate::dns::pool_reply::PoolQuery;
use crate::dns::respond::{Outcome, Shape, Transport};
use crate::dns::server::{DnsState, Snapshots};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Most replies one worker keeps.
pub const MAX_ENTRIES: usize = 4096;
/// Most bytes of keys and replies one worker keeps.
pub const MAX_BYTES: usize = 4 << 20;
/// Longest query (without its ID) whose reply is kept.
const MAX_KEY: usize = 512;

/// What is kept for one query, with where its replies are counted.
enum Entry {
    /// The whole reply (with the ID of the query that made it).
    Whole(Box<[u8]>, CountPlace),
    /// The query of a pool-bound name.
    Pool(Box<PoolQuery>, CountPlace),
}

/// The replies one UDP worker keeps (it owns them: no locks).
#[derive(Default)]
pub struct Prepared {
    generation: u64,
    entries: HashMap<Box<[u8]>, Entry>,
    /// Bytes of the keys and entries kept.
    bytes: usize,
}

impl Prepared {
    /// An empty set.
    pub fn new() -> Prepared {
        Prepared::default()
    }

    /// Replies kept now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Answers one UDP message from `peer` as [`DnsState::respond`] does, from a kept reply
    /// when there is one (pools asked afresh use `snapshots`).
    pub fn respond(
        &mut self,
        state: &DnsState,
        snapshots: &Snapshots,
        msg: &[u8],
        peer: SocketAddr,
    ) -> Outcome {
        if snapshots.generation != self.generation {
            self.clear();
            self.generation = snapshots.generation;
        }
        let Some(key) = msg.get(2..).filter(|k| k.len() <= MAX_KEY) else {
            return state.respond(msg, Transport::Udp, peer);
        };
        match self.entries.get(key) {
            Some(Entry::Whole(kept, place)) => {
                let mut reply = kept.to_vec();
                reply[..2].copy_from_slice(&msg[..2]);
                state.metrics.count_at(place, &reply);
                return Outcome::Reply(reply);
            }
            Some(Entry::Pool(pq, place)) => {
                return state.respond_pool(snapshots, pq, place, msg, peer);
            }
            None => {}
        }
        let (outcome, shape) = state.respond_shaped(msg, Transport::Udp, peer);
        let Outcome::Reply(reply) = &outcome else {
            return outcome;
        };
        let place = state.metrics.place(Transport::Udp, reply);
        state.metrics.count_at(&place, reply);
        let (entry, size) = match shape {
            Shape::Fixed => (Entry::Whole(reply.clone().into(), place), reply.len()),
            Shape::Pool(pq) => {
                let size = pq.size();
                (Entry::Pool(pq, place), size)
            }
            Shape::Varies => return outcome,
        };
        let size = size + key.len();
        if self.entries.len() >= MAX_ENTRIES || self.bytes + size > MAX_BYTES {
            self.clear();
        }
        self.entries.insert(key.into(), entry);
        self.bytes += size;
        outcome
    }

    /// Forgets every kept reply.
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests;
