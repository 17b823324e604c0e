//! One HTTP/1.1 or TCP probe over a plain `TcpStream`.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{CheckSpec, Protocol, StatusMatcher};

/// Most body bytes read for a `body_contains` check.
const MAX_BODY: usize = 64 * 1024;
/// Longest status, header or chunk-size line accepted.
const MAX_LINE: u64 = 8 * 1024;
/// Most header lines accepted in one response.
const MAX_HEADERS: usize = 100;

/// Outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// True if the endpoint passed.
    pub ok: bool,
    /// Human-readable reason, e.g. "HTTP 200", "HTTP 503 (want 200-299)", "connection refused".
    pub detail: String,
}

impl ProbeResult {
    fn pass(detail: impl Into<String>) -> Self {
        ProbeResult {
            ok: true,
            detail: detail.into(),
        }
    }

    fn fail(detail: impl Into<String>) -> Self {
        ProbeResult {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Why a probe could not complete; becomes a failed [`ProbeResult`].
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("{}", describe_io(.0))]
    Connect(io::Error),
    #[error("{}", describe_io(.0))]
    Io(#[from] io::Error),
    #[error("bad response: {0}")]
    Malformed(&'static str),
    #[error("invalid request: {0}")]
    Request(&'static str),
}

/// Short lower-case text for the errors a probe usually meets.
fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::ConnectionAborted => "connection aborted".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        _ => err.to_string(),
    }
}

/// One probe, bounded by spec.timeout (connect + request + response together). HTTP:
/// `GET path HTTP/1.1`, `Host:` header = spec host or the address, `Connection: close`,
/// `User-Agent: roundhouse-health`; read the status line, headers and at most 64 KiB of body
/// (Content-Length, chunked or until close), check matcher and body substring. The body is
/// only read when `body_contains` is set. TCP: connect succeeds. IPv6 addresses supported.
pub async fn probe(addr: IpAddr, spec: &CheckSpec) -> ProbeResult {
    match tokio::time::timeout(spec.timeout, run(SocketAddr::new(addr, spec.port), spec)).await {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => ProbeResult::fail(err.to_string()),
        Err(_) => ProbeResult::fail(format!("timed out after {:?}", spec.timeout)),
    }
}

async fn run(sock: SocketAddr, spec: &CheckSpec) -> Result<ProbeResult, ProbeError> {
    let request = match &spec.protocol {
        Protocol::Tcp => None,
        Protocol::Http { path, host, .. } => Some(build_request(sock, path, host.as_deref())?),
    };
    let mut stream = TcpStream::connect(sock)
        .await
        .map_err(ProbeError::Connect)?;
    let (
        Some(request),
        Protocol::Http {
            matcher,
            body_contains,
            ..
        },
    ) = (request, &spec.protocol)
    else {
        return Ok(ProbeResult::pass("TCP connected"));
    };
    stream.write_all(request.as_bytes()).await?;
    check_response(BufReader::new(stream), matcher, body_contains.as_deref()).await
}

/// The request bytes; rejects path or host text that would break the request framing.
fn build_request(sock: SocketAddr, path: &str, host: Option<&str>) -> Result<String, ProbeError> {
    let path = if path.is_empty() { "/" } else { path };
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ProbeError::Request(
            "path contains whitespace or control bytes",
        ));
    }
    let host = match host {
        Some(h) if h.bytes().any(|b| b.is_ascii_control()) => {
            return Err(ProbeError::Request("host contains control bytes"));
        }
        Some(h) => h.to_string(),
        None if sock.port() == 80 => ip_literal(sock.ip()),
        None => sock.to_string(),
    };
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         User-Agent: roundhouse-health\r\nAccept: */*\r\n\r\n"
    ))
}

/// The address as written in a `Host:` header: IPv6 in brackets.
fn ip_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

async fn check_response<R: AsyncBufRead + Unpin>(
    mut reader: R,
    matcher: &StatusMatcher,
    body_contains: Option<&str>,
) -> Result<ProbeResult, ProbeError> {
    let head = read_head(&mut reader).await?;
    if !matcher.matches(head.status) {
        return Ok(ProbeResult::fail(format!(
            "HTTP {} (want {matcher})",
            head.status
        )));
    }
    if let Some(needle) = body_contains {
        let body = read_body(&mut reader, &head).await?;
        if !contains(&body, needle.as_bytes()) {
            return Ok(ProbeResult::fail(format!("body lacks {needle:?}")));
        }
    }
    Ok(ProbeResult::pass(format!("HTTP {}", head.status)))
}

/// What the body reader needs from the response head.
#[derive(Debug, Default)]
struct Head {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
}

/// Reads the final response head, skipping interim 1xx responses.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Head, ProbeError> {
    loop {
        let status = parse_status(&read_line(reader).await?)?;
        let head = read_headers(reader, status).await?;
        if !(100..200).contains(&status) || status == 101 {
            return Ok(head);
        }
    }
}

/// One line without its CR LF, at most `MAX_LINE` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, ProbeError> {
    let mut buf = Vec::new();
    let n = reader.take(MAX_LINE).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Err(ProbeError::Malformed("connection closed early"));
    }
    if buf.pop() != Some(b'\n') {
        return Err(ProbeError::Malformed(if n as u64 == MAX_LINE {
            "line too long"
        } else {
            "connection closed mid-line"
        }));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Status code of a line like "HTTP/1.1 200 OK".
fn parse_status(line: &str) -> Result<u16, ProbeError> {
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(ProbeError::Malformed("not an HTTP/1.x status line"));
    }
    match code.parse::<u16>() {
        Ok(status) if (100..=599).contains(&status) => Ok(status),
        _ => Err(ProbeError::Malformed("invalid status code")),
    }
}

async fn read_headers<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    status: u16,
) -> Result<Head, ProbeError> {
    let mut head = Head {
        status,
        ..Head::default()
    };
    for _ in 0..=MAX_HEADERS {
        let line = read_line(reader).await?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ProbeError::Malformed("header line without colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse()
                .map_err(|_| ProbeError::Malformed("bad Content-Length"))?;
            head.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            head.chunked = last.eq_ignore_ascii_case("chunked");
        }
    }
    Err(ProbeError::Malformed("too many headers"))
}

/// At most `MAX_BODY` bytes of the body, framed as the head says.
async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    head: &Head,
) -> Result<Vec<u8>, ProbeError> {
    let mut body = Vec::new();
    if head.status == 204 || head.status == 304 {
        return Ok(body);
    }
    if head.chunked {
        read_chunked(reader, &mut body).await?;
        return Ok(body);
    }
    let limit = head
        .content_length
        .map_or(MAX_BODY as u64, |len| len.min(MAX_BODY as u64));
    reader.take(limit).read_to_end(&mut body).await?;
    Ok(body)
}

/// Decodes a chunked body into `body`, stopping once `MAX_BODY` bytes are in.
async fn read_chunked<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    body: &mut Vec<u8>,
) -> Result<(), ProbeError> {
    while body.len() < MAX_BODY {
        let line = read_line(reader).await?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| ProbeError::Malformed("bad chunk size"))?;
        if size == 0 {
            return Ok(());
        }
        let want = size.min((MAX_BODY - body.len()) as u64);
        let got = reader.take(want).read_to_end(body).await?;
        if (got as u64) < want {
            return Err(ProbeError::Malformed("connection closed mid-chunk"));
        }
        if want == size && !read_line(reader).await?.is_empty() {
            return Err(ProbeError::Malformed("chunk not followed by CRLF"));
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
