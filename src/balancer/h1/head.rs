//! Message heads of the direct HTTP/1.1 path: a client's request head, read and judged
//! simple enough to pass on directly, written again for the target; a target's response
//! head, its body's framing (RFC 9112 §6.3), written again for the client. Header bytes are
//! passed on as they came, less the hop-by-hop headers.

use bytes::{Bytes, BytesMut};
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use std::ops::Range;

/// Headers a head may carry at most (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// A request head the direct path takes: HTTP/1.1, origin-form target, no body.
#[derive(Debug)]
pub struct RequestHead {
    /// The whole head, final empty line included.
    bytes: Bytes,
    method: Range<usize>,
    target: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    /// Values of the Connection headers (the hop-by-hop names they list).
    connection: Vec<Range<usize>>,
    /// The client keeps the connection open after the response.
    pub keep_alive: bool,
}

/// What reading the buffer's first request head gave.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// A request for the direct path (taken off the buffer).
    Simple(RequestHead),
    /// Anything else (a body, an upgrade, HTTP/1.0, a malformed or oversized head):
    /// left in the buffer for the general path.
    Other,
}

/// Reads the request head at the start of `buf`; a simple one is split off it.
pub fn parse_request(buf: &mut BytesMut, max_uri: usize) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Other;
    };
    if method == "CONNECT" || !target.starts_with('/') || target.len() > max_uri {
        return Parsed::Other;
    }
    let Some(at) = Ranges::of(buf, &[method.as_bytes(), target.as_bytes()], req.headers) else {
        return Parsed::Other;
    };
    let mut head = RequestHead {
        bytes: Bytes::new(),
        method: at.at(method.as_bytes()),
        target: at.at(target.as_bytes()),
        headers: Vec::with_capacity(req.headers.len()),
        connection: Vec::new(),
        keep_alive: true,
    };
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let lower = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if lower("transfer-encoding") || lower("upgrade") || lower("expect") {
            return Parsed::Other;
        }
        if lower("content-length") && h.value != b"0" {
            return Parsed::Other;
        }
        if lower("connection") {
            for token in tokens(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Parsed::Other;
                }
            }
            head.connection.push(at.at(h.value));
        }
        head.headers.push((at.at(name), at.at(h.value)));
    }
    head.bytes = buf.split_to(len).freeze();
    Parsed::Simple(head)
}

/// Where slices that httparse returned lie in the buffer it parsed.
struct Ranges {
    base: usize,
}

impl Ranges {
    /// Checks that `slices` and every header name and value lie in `buf`.
    fn of(buf: &[u8], slices: &[&[u8]], headers: &[httparse::Header<'_>]) -> Option<Ranges> {
        let (start, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        let inside = |s: &[u8]| {
            let p = s.as_ptr() as usize;
            p >= start && p + s.len() <= end
        };
        let all = slices.iter().all(|s| inside(s))
            && headers
                .iter()
                .all(|h| inside(h.name.as_bytes()) && inside(h.value));
        all.then_some(Ranges { base: start })
    }

    /// The range of `s` (checked by [`Ranges::of`]) in the buffer.
    fn at(&self, s: &[u8]) -> Range<usize> {
        let from = s.as_ptr() as usize - self.base;
        from..from + s.len()
    }
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Headers that concern one connection only (RFC 9110 §7.6.1), never passed on.
fn hop_by_hop(name: &[u8]) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

impl RequestHead {
    fn get(&self, r: &Range<usize>) -> &[u8] {
        &self.bytes[r.clone()]
    }

    /// The method.
    pub fn method(&self) -> &str {
        std::str::from_utf8(self.get(&self.method)).unwrap_or("")
    }

    /// The request target (path and query).
    pub fn target(&self) -> &str {
        std::str::from_utf8(self.get(&self.target)).unwrap_or("/")
    }

    /// Whether a method of this name may be sent twice (RFC 9110 §9.2.2).
    pub fn idempotent(&self) -> bool {
        matches!(
            self.method(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.get(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| self.get(v))
    }

    /// The headers as a map (values share the head's bytes); None when one is not valid
    /// there (the general path answers such a request).
    pub fn header_map(&self) -> Option<HeaderMap> {
        let mut map = HeaderMap::with_capacity(self.headers.len());
        for (n, v) in &self.headers {
            let name = HeaderName::from_bytes(self.get(n)).ok()?;
            let value = HeaderValue::from_maybe_shared(self.bytes.slice(v.clone())).ok()?;
            map.append(name, value);
        }
        Some(map)
    }

    /// Whether header `name` is listed in a Connection header (so is hop-by-hop).
    fn listed(&self, name: &[u8]) -> bool {
        self.connection
            .iter()
            .any(|r| tokens(self.get(r)).any(|t| t.eq_ignore_ascii_case(name)))
    }

    /// Writes the head for a target: the request line in HTTP/1.1, the client's headers
    /// less the hop-by-hop ones, and X-Forwarded-For (the `client` address appended to the
    /// client's), then `forwarded` (see [`forwarded`]).
    pub fn write_upstream(&self, out: &mut Vec<u8>, client: &str, forwarded: &[u8]) {
        out.extend_from_slice(self.get(&self.method));
        out.push(b' ');
        out.extend_from_slice(self.get(&self.target));
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut host = false;
        for (n, v) in &self.headers {
            let name = self.get(n);
            let is = |h: &str| name.eq_ignore_ascii_case(h.as_bytes());
            if hop_by_hop(name)
                || is("x-forwarded-for")
                || is("x-forwarded-proto")
                || is("x-forwarded-port")
                || self.listed(name)
            {
                continue;
            }
            host |= is("host");
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.get(v));
            out.extend_from_slice(b"\r\n");
        }
        if !host {
            out.extend_from_slice(b"host: localhost\r\n");
        }
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(prev) = self.header("x-forwarded-for") {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(client.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(forwarded);
    }
}

/// The end of every request head a listener sends to targets: X-Forwarded-Proto and -Port,
/// as ALB adds them, and the empty line.
pub fn forwarded(proto: &str, port: u16) -> Vec<u8> {
    format!("x-forwarded-proto: {proto}\r\nx-forwarded-port: {port}\r\n\r\n").into_bytes()
}

/// Writes `HTTP/1.1 NNN ` for a status code (100–999).
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    let digit = |d: u16| b'0' + (d % 10) as u8;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[digit(status / 100), digit(status / 10), digit(status), b' ']);
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Content-Length bytes.
    Length(u64),
    /// Chunked transfer coding, passed on as it is.
    Chunked,
    /// Everything until the target closes.
    Close,
}

/// A target's response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Bytes of the head in the buffer it was read from.
    pub len: usize,
    /// The body's framing.
    pub framing: Framing,
    /// The target keeps the connection open after this response.
    pub keep_alive: bool,
    reason: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    connection: Vec<Range<usize>>,
}

/// A response head the direct path cannot pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Reads the response head at the start of `buf` (to a request with `method`).
pub fn parse_response(buf: &[u8], method: &str) -> Result<Option<ResponseHead>, Malformed> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Malformed),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(Malformed);
    };
    let Some(at) = Ranges::of(buf, &[], resp.headers) else {
        return Err(Malformed);
    };
    // The reason phrase by position (httparse gives an empty one, not a slice of the
    // buffer, when it is not UTF-8): after `HTTP/1.x NNN `, to the end of the line.
    let line = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(0);
    let mut head = ResponseHead {
        status,
        len,
        framing: Framing::Close,
        keep_alive: version == 1,
        reason: line.min(13)..line,
        headers: Vec::with_capacity(resp.headers.len()),
        connection: Vec::new(),
    };
    let (mut chunked, mut coded, mut length) = (false, false, None);
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        let lower = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if lower("transfer-encoding") {
            coded = true;
            chunked = tokens(h.value)
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if lower("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(Malformed)?;
            if length.is_some_and(|l| l != n) {
                return Err(Malformed);
            }
            length = Some(n);
        } else if lower("connection") {
            for token in tokens(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    head.keep_alive = true;
                }
            }
            head.connection.push(at.at(h.value));
        }
        head.headers.push((at.at(name), at.at(h.value)));
    }
    head.framing = if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if coded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    if head.framing == Framing::Close {
        head.keep_alive = false;
    }
    Ok(Some(head))
}

impl ResponseHead {
    /// Writes the head for the client from `buf` (the bytes it was read from): the status
    /// line in HTTP/1.1, the target's headers less the hop-by-hop ones, then `extra` header
    /// lines (each ending in CRLF) and `connection: close` when `close`.
    pub fn write_client(&self, buf: &[u8], out: &mut Vec<u8>, extra: &[u8], close: bool) {
        status_line(out, self.status);
        out.extend_from_slice(&buf[self.reason.clone()]);
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            let name = &buf[n.clone()];
            // The body's framing goes on whatever the Connection header lists: the body is
            // passed on as it came.
            let framing = name.eq_ignore_ascii_case(b"transfer-encoding")
                || name.eq_ignore_ascii_case(b"content-length");
            let listed = self
                .connection
                .iter()
                .any(|r| tokens(&buf[r.clone()]).any(|t| t.eq_ignore_ascii_case(name)));
            if hop_by_hop(name) || (listed && !framing) {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(&buf[v.clone()]);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(extra);
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The values of the Set-Cookie headers, as a map for [`crate::balancer::sticky`].
    pub fn set_cookies(&self, buf: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in &self.headers {
            if buf[n.clone()].eq_ignore_ascii_case(b"set-cookie")
                && let Ok(value) = HeaderValue::from_bytes(&buf[v.clone()])
            {
                map.append(hyper::header::SET_COOKIE, value);
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(raw: &str) -> RequestHead {
        let mut buf = BytesMut::from(raw);
        match parse_request(&mut buf, 8192) {
            Parsed::Simple(h) => h,
            other => panic!("{other:?} for {raw:?}"),
        }
    }

    fn is_other(raw: &str) -> bool {
        matches!(parse_request(&mut BytesMut::from(raw), 8192), Parsed::Other)
    }

    #[test]
    fn a_plain_get_is_written_again_for_the_target() {
        let h = simple(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\n\
             X-Secret: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n",
        );
        assert!(h.keep_alive);
        assert_eq!((h.method(), h.target()), ("GET", "/a?b=1"));
        let mut out = Vec::new();
        h.write_upstream(&mut out, "192.0.2.7", &forwarded("http", 80));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\
             x-forwarded-for: 10.0.0.1, 192.0.2.7\r\nx-forwarded-proto: http\r\n\
             x-forwarded-port: 80\r\n\r\n"
        );
        let map = h.header_map().unwrap();
        assert_eq!(map.get("x-secret").unwrap(), "1");
    }

    #[test]
    fn what_the_direct_path_does_not_take_is_left_in_the_buffer() {
        let mut buf = BytesMut::from("GET / HTTP/1.1\r\nHost: x");
        assert!(matches!(parse_request(&mut buf, 8192), Parsed::Partial));
        assert!(is_other("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
        assert!(is_other(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(is_other("GET / HTTP/1.0\r\n\r\n"));
        assert!(is_other(
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ));
        assert!(is_other("GET http://x/ HTTP/1.1\r\n\r\n"));
        assert!(is_other("GET /\0 HTTP/1.1\r\n\r\n"));
        let raw = "GET /toolong HTTP/1.1\r\n\r\n";
        let mut buf = BytesMut::from(raw);
        assert!(matches!(parse_request(&mut buf, 4), Parsed::Other));
        assert_eq!(buf.len(), raw.len(), "nothing was taken");
        let h = simple("GET / HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\nnext");
        assert!(!h.keep_alive);
    }

    #[test]
    fn response_framing() {
        let framing = |raw: &str, method: &str| {
            parse_response(raw.as_bytes(), method).map(|h| h.map(|h| (h.framing, h.keep_alive)))
        };
        use Framing::*;
        let ok = "HTTP/1.1 200 OK\r\n";
        assert_eq!(
            framing(&format!("{ok}Content-Length: 5\r\n\r\n"), "GET"),
            Ok(Some((Length(5), true)))
        );
        assert_eq!(
            framing(&format!("{ok}Content-Length: 5\r\n\r\n"), "HEAD"),
            Ok(Some((Empty, true)))
        );
        assert_eq!(
            framing(
                &format!("{ok}Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n"),
                "GET"
            ),
            Ok(Some((Chunked, true)))
        );
        assert_eq!(
            framing(&format!("{ok}\r\n"), "GET"),
            Ok(Some((Close, false)))
        );
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\n\r\n", "GET"),
            Ok(Some((Empty, true)))
        );
        assert_eq!(
            framing(
                &format!("{ok}Connection: close\r\nContent-Length: 0\r\n\r\n"),
                "GET"
            ),
            Ok(Some((Length(0), false)))
        );
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET"),
            Ok(Some((Length(0), false)))
        );
        assert_eq!(
            framing(
                &format!("{ok}Content-Length: 1\r\nContent-Length: 2\r\n\r\n"),
                "GET"
            ),
            Err(Malformed)
        );
        assert_eq!(
            framing(&format!("{ok}Content-Length: -1\r\n\r\n"), "GET"),
            Err(Malformed)
        );
        assert_eq!(framing(ok, "GET"), Ok(None));
    }

    #[test]
    fn a_response_head_loses_its_hop_by_hop_headers() {
        let raw = b"HTTP/1.1 200 Fine\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
                    Set-Cookie: a=1\r\nContent-Length: 0\r\n\r\n";
        let h = parse_response(raw, "GET").unwrap().unwrap();
        let mut out = Vec::new();
        h.write_client(raw, &mut out, b"set-cookie: b=2\r\n", true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\n\
             set-cookie: b=2\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(h.set_cookies(raw).get_all("set-cookie").iter().count(), 1);
        // Framing headers stay, even when Connection lists them.
        let raw = b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding, Content-Length\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        let h = parse_response(raw, "GET").unwrap().unwrap();
        let mut out = Vec::new();
        h.write_client(raw, &mut out, b"", false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }
}
