//! Request smuggling defence for HTTP/1.1 client connections: every request whose body is
//! framed two ways is answered 400 and the connection closed, before it is routed.
//!
//! hyper settles most conflicts itself (RFC 9112 §6.3): two different Content-Lengths, an
//! invalid one, and a Transfer-Encoding whose last coding is not `chunked` are answered 400.
//! But a request carrying both Transfer-Encoding and Content-Length is read as chunked, and
//! the Content-Length is dropped from the header map before the request reaches us, so the
//! handler cannot tell it from a plain chunked one. AWS ALB (in its strictest desync mode),
//! Envoy and Node's parser reject such a request instead, and so do we.
//!
//! [`Inspected`] wraps the client stream and reads the same bytes as hyper, just before it:
//! request heads (with httparse, as hyper does), then each body by its framing, so it knows
//! where the next head starts. It records, for the n-th request head, whether its framing is
//! clean; the handler asks for the n-th verdict when hyper hands it the n-th request (HTTP/1
//! requests of a connection reach the handler one at a time, in order). A head that could
//! not be inspected (too large, unparsable: hyper refuses those too) stops the inspection;
//! a request after that point is served but its connection closed after the response.
//!
//! What is refused beyond hyper: Transfer-Encoding together with Content-Length, and any
//! Transfer-Encoding other than exactly one `chunked` coding (`gzip, chunked` would reach the
//! target without its gzip coding, since the balancer sends bodies with a length of its own).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Headers a request head may carry at most (hyper's default).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line inspected.
const MAX_LINE: usize = 8 * 1024;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Transfer-Encoding and Content-Length both present.
    BothLengths,
    /// Content-Length values that differ or are not a number.
    Lengths,
    /// A Transfer-Encoding other than exactly `chunked` (or on HTTP/1.0).
    Coding,
}

impl Conflict {
    /// The body of the 400 response.
    pub fn reason(self) -> &'static str {
        match self {
            Conflict::BothLengths => "both Transfer-Encoding and Content-Length\n",
            Conflict::Lengths => "conflicting or invalid Content-Length\n",
            Conflict::Coding => "unsupported Transfer-Encoding (only chunked)\n",
        }
    }
}

/// What the inspection says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// One framing: route it.
    Clean,
    /// Refuse it with 400 and close.
    Refuse(Conflict),
    /// Not inspected: serve it, then close the connection.
    Unknown,
}

/// Where the inspection is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Bytes of a Content-Length body left.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Bytes of chunk data left.
    ChunkData(u64),
    /// Reading the line break after chunk data.
    ChunkEnd,
    /// Reading trailer lines up to the empty one.
    Trailers,
    /// Stopped: after a refused head, or one that could not be inspected.
    Off,
}

/// The inspection of one connection: fed the bytes hyper reads, asked for each request's
/// verdict.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// The head or line being collected.
    buf: Vec<u8>,
    max_head: usize,
    /// Complete heads inspected.
    heads: u64,
    /// The refused head (its number) and why.
    refused: Option<(u64, Conflict)>,
    /// Requests the handler has asked about.
    asked: u64,
}

impl Scanner {
    /// A connection whose request heads may take `max_head` bytes (hyper's limit; beyond it
    /// hyper answers 431 itself).
    pub fn new(max_head: usize) -> Scanner {
        Scanner {
            state: State::Head,
            buf: Vec::new(),
            // Room for the start of a body read together with a head of the largest size.
            max_head: max_head.saturating_add(16 * 1024),
            heads: 0,
            refused: None,
            asked: 0,
        }
    }

    /// The verdict for the next request the handler got.
    pub fn next_request(&mut self) -> Verdict {
        self.asked += 1;
        match self.refused {
            Some((n, why)) if n == self.asked => Verdict::Refuse(why),
            _ if self.asked <= self.heads => Verdict::Clean,
            _ => Verdict::Unknown,
        }
    }

    /// Follows `input`, the next bytes read from the client.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            input = match self.state {
                State::Off => return,
                State::Head => self.head(input),
                State::Body(left) | State::ChunkData(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    let left = left - n as u64;
                    self.state = match self.state {
                        State::Body(_) if left == 0 => State::Head,
                        State::Body(_) => State::Body(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    &input[n..]
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => self.line(input),
            };
        }
    }

    /// Collects a head; the input after it.
    fn head<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        // A head that came in one read is parsed where it lies; only one split over reads
        // is collected.
        let before = self.buf.len();
        if before > 0 {
            self.buf.extend_from_slice(input);
        }
        let parsed = {
            let bytes: &[u8] = if before == 0 { input } else { &self.buf };
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(bytes) {
                Ok(httparse::Status::Complete(len)) => Some((len, framing(&req))),
                Ok(httparse::Status::Partial) if bytes.len() <= self.max_head => None,
                // hyper answers these itself (400, 431) and closes.
                _ => return self.stop(),
            }
        };
        let Some((len, framed)) = parsed else {
            if before == 0 {
                self.buf.extend_from_slice(input);
            }
            return &[];
        };
        self.heads += 1;
        match framed {
            Ok(Body::Length(0)) => self.state = State::Head,
            Ok(Body::Length(n)) => self.state = State::Body(n),
            Ok(Body::Chunked) => self.state = State::ChunkSize,
            Err(why) => {
                self.refused = Some((self.heads, why));
                return self.stop();
            }
        }
        self.buf.clear();
        &input[len.saturating_sub(before)..]
    }

    /// Collects a line of the chunked framing; the input after it.
    fn line<'a>(&mut self, input: &'a [u8]) -> &'a [u8] {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            self.buf.extend_from_slice(input);
            if self.buf.len() > MAX_LINE {
                return self.stop();
            }
            return &[];
        };
        self.buf.extend_from_slice(&input[..end]);
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        self.state = match self.state {
            State::ChunkSize => match chunk_size(line) {
                Some(0) => State::Trailers,
                Some(n) => State::ChunkData(n),
                None => return self.stop(),
            },
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::Trailers if line.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            _ => return self.stop(),
        };
        self.buf.clear();
        &input[end + 1..]
    }

    fn stop<'a>(&mut self) -> &'a [u8] {
        self.state = State::Off;
        self.buf = Vec::new();
        &[]
    }
}

/// How a request's body is delimited.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked,
}

/// The one framing of a request, or why it has none.
fn framing(req: &httparse::Request<'_, '_>) -> Result<Body, Conflict> {
    let values = |name: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let has_te = values("transfer-encoding").next().is_some();
    let has_cl = values("content-length").next().is_some();
    if has_te && has_cl {
        return Err(Conflict::BothLengths);
    }
    if has_te {
        let mut codings = values("transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|c| c.trim_ascii());
        let chunked = codings
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        // HTTP/1.0 has no transfer codings (hyper refuses them too).
        if !chunked || codings.next().is_some() || req.version != Some(1) {
            return Err(Conflict::Coding);
        }
        return Ok(Body::Chunked);
    }
    let mut length = None;
    for v in values("content-length") {
        let n = digits(v).ok_or(Conflict::Lengths)?;
        if length.is_some_and(|l| l != n) {
            return Err(Conflict::Lengths);
        }
        length = Some(n);
    }
    Ok(Body::Length(length.unwrap_or(0)))
}

/// A Content-Length value: digits only (as hyper reads it).
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The size of a chunk-size line (`1a`, `1a;ext=v`, with optional blanks before `;`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let size = line.split(|&b| b == b';').next()?.trim_ascii_end();
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    // Leading zeros are allowed (as hyper allows them): only the rest must fit in 64 bits.
    let significant = size
        .iter()
        .position(|&b| b != b'0')
        .map_or(&[][..], |i| &size[i..]);
    if significant.len() > 16 {
        return None;
    }
    significant.iter().try_fold(0u64, |n, &b| {
        Some(n << 4 | u64::from((b as char).to_digit(16)?))
    })
}

/// A client stream whose incoming bytes pass through a [`Scanner`] before hyper reads them.
pub struct Inspected<I> {
    io: I,
    scanner: Arc<Mutex<Scanner>>,
}

impl<I> Inspected<I> {
    /// Wraps `io`; the scanner is shared with the request handler.
    pub fn new(io: I, max_head: usize) -> (Inspected<I>, Arc<Mutex<Scanner>>) {
        let scanner = Arc::new(Mutex::new(Scanner::new(max_head)));
        (
            Inspected {
                io,
                scanner: scanner.clone(),
            },
            scanner,
        )
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Inspected<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let mut scanner = self.scanner.lock().expect("scanner lock");
            scanner.feed(&buf.filled()[before..]);
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Inspected<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdicts of every request in `stream`, fed `step` bytes at a time.
    fn verdicts(stream: &[u8], step: usize, requests: usize) -> Vec<Verdict> {
        let mut s = Scanner::new(64 * 1024);
        for piece in stream.chunks(step) {
            s.feed(piece);
        }
        (0..requests).map(|_| s.next_request()).collect()
    }

    fn all_steps(stream: &[u8], requests: usize) -> Vec<Verdict> {
        let whole = verdicts(stream, stream.len().max(1), requests);
        for step in [1, 2, 3, 7, 64] {
            assert_eq!(verdicts(stream, step, requests), whole, "step {step}");
        }
        whole
    }

    #[test]
    fn pipelined_requests_are_followed_through_every_framing() {
        // Bodies that look like requests are not counted as requests.
        let fake = "GET /x HTTP/1.1\r\nA: b\r\n\r\n";
        let stream = format!(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n\
             POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{fake}\
             POST /b HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
             5;ext=1\r\nHELLO\r\n000000000000000000{:x} \r\n{fake}\r\n0\r\nX-Trailer: t\r\n\r\n\
             \r\nGET /last HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            fake.len(),
            fake.len()
        );
        assert_eq!(
            all_steps(stream.as_bytes(), 5),
            [
                Verdict::Clean,
                Verdict::Clean,
                Verdict::Clean,
                Verdict::Clean,
                Verdict::Unknown
            ]
        );
    }

    #[test]
    fn both_framings_are_refused_in_either_order() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 6\r\n\r\n",
        ] {
            let stream = format!("GET / HTTP/1.1\r\n\r\n{head}0\r\n\r\nG");
            assert_eq!(
                all_steps(stream.as_bytes(), 3),
                [
                    Verdict::Clean,
                    Verdict::Refuse(Conflict::BothLengths),
                    Verdict::Unknown
                ]
            );
        }
    }

    #[test]
    fn only_a_lone_chunked_coding_is_accepted() {
        let refused = |te: &str| {
            let head = format!("POST / HTTP/1.1\r\n{te}\r\n\r\n");
            verdicts(head.as_bytes(), 5, 1)[0]
        };
        for te in [
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: identity",
            "Transfer-Encoding: chunked1",
            "Transfer-Encoding: ",
        ] {
            assert_eq!(refused(te), Verdict::Refuse(Conflict::Coding), "{te}");
        }
        assert_eq!(refused("Transfer-Encoding:  CHUNKED "), Verdict::Clean);
        let old = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(old, 4, 1), [Verdict::Refuse(Conflict::Coding)]);
    }

    #[test]
    fn content_lengths_must_agree_and_be_numbers() {
        let verdict = |cl: &str| {
            let head = format!("POST / HTTP/1.1\r\n{cl}\r\n\r\n");
            verdicts(head.as_bytes(), 100, 1)[0]
        };
        assert_eq!(
            verdict("Content-Length: 4\r\nContent-Length: 5"),
            Verdict::Refuse(Conflict::Lengths)
        );
        assert_eq!(
            verdict("Content-Length: 4, 5"),
            Verdict::Refuse(Conflict::Lengths)
        );
        assert_eq!(
            verdict("Content-Length: -1"),
            Verdict::Refuse(Conflict::Lengths)
        );
        assert_eq!(
            verdict("Content-Length: 4\r\nContent-Length: 4"),
            Verdict::Clean
        );
    }

    #[test]
    fn what_cannot_be_inspected_stops_the_inspection() {
        // A head over the limit (hyper answers 431), then nothing more is vouched for.
        let mut s = Scanner::new(100);
        s.feed(b"GET / HTTP/1.1\r\nX: ");
        s.feed(&[b'a'; 20_000]);
        s.feed(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(s.next_request(), Verdict::Unknown);
        // A broken chunk size (hyper fails the body): the requests before it stay clean.
        let mut s = Scanner::new(1024);
        s.feed(
            b"GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        let got: Vec<Verdict> = (0..3).map(|_| s.next_request()).collect();
        assert_eq!(got, [Verdict::Clean, Verdict::Clean, Verdict::Unknown]);
    }

    #[tokio::test]
    async fn hyper_and_the_inspection_agree_on_every_request() {
        use bytes::Bytes;
        use http_body_util::{BodyExt, Full};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (io, scanner) = Inspected::new(server, 8192);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let verdict = scanner.lock().unwrap().next_request();
                let log = log.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
                    log.lock().unwrap().push((path, body.ok(), verdict));
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                }
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        tokio::spawn(conn);
        let fake = "GET /x HTTP/1.1\r\n\r\n";
        let stream = format!(
            "GET /a HTTP/1.1\r\n\r\n\
             POST /b HTTP/1.1\r\nContent-Length: {}\r\n\r\n{fake}\
             POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
             3;x=y\r\nabc\r\n0{:x}\r\n{fake}\r\n0\r\nTrailer: t\r\n\r\n\
             POST /d HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi\
             POST /bad HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            fake.len(),
            fake.len()
        );
        client.write_all(stream.as_bytes()).await.unwrap();
        // hyper closes the connection after the last request (it has both framings).
        let mut replies = Vec::new();
        client.read_to_end(&mut replies).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let want = [
            ("/a", 0, Verdict::Clean),
            ("/b", fake.len(), Verdict::Clean),
            ("/c", 3 + fake.len(), Verdict::Clean),
            ("/d", 2, Verdict::Clean),
            ("/bad", 0, Verdict::Refuse(Conflict::BothLengths)),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(p, n, v)| (p.to_string(), Some(n), v))
            .collect();
        assert_eq!(seen, want);
    }

    #[tokio::test]
    async fn the_wrapper_inspects_what_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(4096);
        let (mut inspected, scanner) = Inspected::new(server, 1024);
        let mut client = client;
        client
            .write_all(
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await
            .unwrap();
        drop(client);
        let mut seen = Vec::new();
        inspected.read_to_end(&mut seen).await.unwrap();
        assert!(seen.starts_with(b"POST / "));
        let verdict = scanner.lock().unwrap().next_request();
        assert_eq!(verdict, Verdict::Refuse(Conflict::BothLengths));
    }
}
