//! The authoritative DNS server: names, zone files, zones, the answer function, the wire
//! format and the sockets.

pub mod answer;
pub mod catalog;
pub mod loader;
pub mod metrics;
pub mod name;
pub mod pool_reply;
pub mod prepared;
pub mod respond;
pub mod rrl;
pub mod server;
#[cfg(target_os = "linux")]
pub mod udp;
pub mod wire;
pub mod writer;
pub mod xfr;
pub mod zone;
pub mod zonefile;
