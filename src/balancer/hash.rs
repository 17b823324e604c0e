//! Hashing for `source-ip-hash` and `consistent-hash`: rendezvous (highest random weight)
//! scores, and the hash key of a request.

use crate::config::HashKey;
use crate::pool::select::mix;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// What a request is hashed on: the configured key when the request carries it, else the
/// client address.
#[derive(Debug, Clone, Copy, Hash)]
pub(crate) enum Affinity<'a> {
    /// A header or cookie value.
    Key(&'a str),
    /// The client address.
    Client(IpAddr),
}

/// Highest-random-weight score of an (affinity, target) pair: the target with the highest
/// score wins, so removing a target moves only the requests that were on it.
pub(crate) fn rendezvous(affinity: Affinity<'_>, target: SocketAddr) -> u64 {
    // DefaultHasher::new() has fixed keys: the same request maps to the same target in
    // every process and after every restart.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (affinity, target).hash(&mut h);
    mix(h.finish())
}

/// The value `key` names in a request's headers: the header's value, or the cookie's value
/// from the `cookie` header(s) (`a=1; b=2`). `None` when absent or not text.
pub fn hash_value<'a>(key: &HashKey, headers: &'a hyper::HeaderMap) -> Option<&'a str> {
    match key {
        HashKey::Header(name) => headers.get(name.as_str())?.to_str().ok(),
        HashKey::Cookie(name) => headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim_matches('"')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;

    #[test]
    fn hash_value_reads_headers_and_cookies() {
        let mut h = HeaderMap::new();
        h.insert("x-user-id", "42".parse().unwrap());
        h.append("cookie", "a=1; session=abc ; b=2".parse().unwrap());
        h.append("cookie", "late=\"q\"".parse().unwrap());
        let header = |n: &str| HashKey::Header(n.into());
        let cookie = |n: &str| HashKey::Cookie(n.into());
        let cases = [
            (header("x-user-id"), Some("42")),
            (header("x-other"), None),
            (cookie("session"), Some("abc")),
            (cookie("a"), Some("1")),
            (cookie("late"), Some("q")),
            (cookie("sess"), None),
            (cookie("Session"), None),
        ];
        for (key, want) in cases {
            assert_eq!(hash_value(&key, &h), want, "{key:?}");
        }
    }

    #[test]
    fn scores_depend_on_both_sides() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let k = Affinity::Key("user-1");
        assert_eq!(rendezvous(k, a), rendezvous(Affinity::Key("user-1"), a));
        assert_ne!(rendezvous(k, a), rendezvous(k, b));
        assert_ne!(rendezvous(k, a), rendezvous(Affinity::Key("user-2"), a));
    }
}
