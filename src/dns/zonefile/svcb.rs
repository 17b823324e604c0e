//! SVCB and HTTPS records (RFC 9460): presentation parsing, validation, and text output.

use std::fmt::Write as _;

use super::PErr;
use super::codec;
use super::rdata::{self, Cursor, put_u16, unescape};
use super::text::{Rd, escaped, ipv4, ipv6};
use crate::dns::name::Name;

const MANDATORY: u16 = 0;
const ALPN: u16 = 1;
const NO_DEFAULT_ALPN: u16 = 2;
const PORT: u16 = 3;
const IPV4HINT: u16 = 4;
const ECH: u16 = 5;
const IPV6HINT: u16 = 6;
const DOHPATH: u16 = 7;

const KEY_NAMES: [&str; 8] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
];

/// Parses `priority target key[=value]...` into wire form with keys in ascending order.
pub(crate) fn parse(cur: &mut Cursor<'_>, origin: &Name, out: &mut Vec<u8>) -> Result<(), PErr> {
    put_u16(
        out,
        rdata::number(cur.expect("priority")?, 65535, cur)? as u16,
    );
    rdata::name(cur.expect("target name")?, origin, cur, out)?;
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    while let Some((tok, _)) = cur.next_tok() {
        let (key, value) = split_param(tok, cur)?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(cur.err("duplicate SVCB parameter"));
        }
        let wire = param_value(key, value.as_deref(), cur)?;
        params.push((key, wire));
    }
    params.sort_by_key(|p| p.0);
    check_mandatory(&params, cur)?;
    for (key, value) in &params {
        put_u16(out, *key);
        let len = u16::try_from(value.len()).map_err(|_| cur.err("SVCB parameter too long"))?;
        put_u16(out, len);
        out.extend_from_slice(value);
    }
    Ok(())
}

/// Splits `key=value` (the value may be a joined quoted token); the value is still escaped.
fn split_param(tok: &[u8], cur: &mut Cursor<'_>) -> Result<(u16, Option<Vec<u8>>), PErr> {
    let (key, value) = match tok.iter().position(|&c| c == b'=') {
        Some(p) => (&tok[..p], Some(&tok[p + 1..])),
        None => (tok, None),
    };
    let key = key_from_name(key).ok_or_else(|| {
        cur.err(format!(
            "invalid SVCB parameter '{}'",
            String::from_utf8_lossy(key)
        ))
    })?;
    let mut value = value.map(<[u8]>::to_vec);
    let joined_quote = cur.peek().filter(|(_, t)| t.quoted && t.joined);
    if let (true, Some((q, _))) = (value.as_ref().is_some_and(Vec::is_empty), joined_quote) {
        value = Some(q.to_vec());
        cur.next_tok();
    }
    Ok((key, value))
}

fn key_from_name(name: &[u8]) -> Option<u16> {
    if let Some(i) = KEY_NAMES.iter().position(|n| n.as_bytes() == name) {
        return Some(i as u16);
    }
    let digits = name.strip_prefix(b"key")?;
    super::types::parse_decimal(digits)
        .and_then(|v| u16::try_from(v).ok())
        .filter(|&v| v != 65535)
}

fn key_to_name(key: u16, out: &mut String) {
    match KEY_NAMES.get(usize::from(key)) {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "key{key}");
        }
    }
}

/// Wire value of one parameter from its (still escaped) presentation value.
fn param_value(key: u16, value: Option<&[u8]>, cur: &Cursor<'_>) -> Result<Vec<u8>, PErr> {
    let bad = |what: &str| cur.err(format!("invalid SVCB {what} value"));
    let mut raw = Vec::new();
    if let Some(v) = value {
        unescape(v, &mut raw).map_err(|e| cur.err(e))?;
    }
    let needs_value = !matches!(key, NO_DEFAULT_ALPN | DOHPATH) && key <= IPV6HINT;
    if needs_value && raw.is_empty() {
        return Err(cur.err("missing SVCB parameter value"));
    }
    let mut out = Vec::new();
    match key {
        MANDATORY => {
            let mut keys = Vec::new();
            for item in raw.split(|&c| c == b',') {
                let k = key_from_name(item).ok_or_else(|| bad("mandatory"))?;
                if k == MANDATORY || keys.contains(&k) {
                    return Err(cur.err("invalid or duplicate key in SVCB mandatory list"));
                }
                keys.push(k);
            }
            keys.sort_unstable();
            keys.iter().for_each(|&k| put_u16(&mut out, k));
        }
        ALPN => alpn_list(&raw, &mut out).ok_or_else(|| bad("alpn"))?,
        NO_DEFAULT_ALPN if !raw.is_empty() => return Err(bad("no-default-alpn")),
        PORT => put_u16(&mut out, rdata::number(&raw, 65535, cur)? as u16),
        IPV4HINT => {
            for item in raw.split(|&c| c == b',') {
                out.extend_from_slice(&rdata::ipv4(item, cur)?.octets());
            }
        }
        IPV6HINT => {
            for item in raw.split(|&c| c == b',') {
                out.extend_from_slice(&rdata::ipv6(item, cur)?.octets());
            }
        }
        ECH => codec::base64_decode(&raw, &mut out).map_err(|e| cur.err(e))?,
        _ => out = raw,
    }
    Ok(out)
}

/// Comma-separated ALPN ids where `\,` and `\\` escape (RFC 9460 Appendix A.1).
fn alpn_list(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut item = Vec::new();
    let mut i = 0;
    loop {
        let end = i >= raw.len();
        if end || raw[i] == b',' {
            if item.is_empty() || item.len() > 255 {
                return None;
            }
            out.push(item.len() as u8);
            out.append(&mut item);
            if end {
                return Some(());
            }
        } else if raw[i] == b'\\' {
            i += 1;
            item.push(*raw.get(i)?);
        } else {
            item.push(raw[i]);
        }
        i += 1;
    }
}

fn check_mandatory(params: &[(u16, Vec<u8>)], cur: &Cursor<'_>) -> Result<(), PErr> {
    let Some((_, list)) = params.iter().find(|(k, _)| *k == MANDATORY) else {
        return Ok(());
    };
    for pair in list.chunks(2) {
        let k = u16::from_be_bytes([pair[0], pair[1]]);
        if !params.iter().any(|(p, _)| *p == k) {
            return Err(cur.err("SVCB mandatory parameter is missing"));
        }
    }
    Ok(())
}

/// Writes the text form of SVCB/HTTPS RDATA; `None` when the wire data is invalid.
pub(crate) fn to_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    write!(out, "{} {}", rd.u16()?, rd.name()?).ok()?;
    let mut last: Option<u16> = None;
    while !rd.is_done() {
        let (key, len) = (rd.u16()?, rd.u16()?);
        if last.is_some_and(|l| l >= key) {
            return None;
        }
        last = Some(key);
        let value = rd.take(usize::from(len))?;
        out.push(' ');
        key_to_name(key, out);
        value_text(key, value, out)?;
    }
    Some(())
}

fn value_text(key: u16, v: &[u8], out: &mut String) -> Option<()> {
    match key {
        MANDATORY => {
            if v.is_empty() || !v.len().is_multiple_of(2) {
                return None;
            }
            out.push('=');
            for (i, pair) in v.chunks(2).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                key_to_name(u16::from_be_bytes([pair[0], pair[1]]), out);
            }
        }
        ALPN => alpn_text(v, out)?,
        NO_DEFAULT_ALPN if !v.is_empty() => return None,
        NO_DEFAULT_ALPN => {}
        PORT if v.len() == 2 => write!(out, "={}", u16::from_be_bytes([v[0], v[1]])).ok()?,
        IPV4HINT | IPV6HINT => {
            let width = if key == IPV4HINT { 4 } else { 16 };
            if v.is_empty() || !v.len().is_multiple_of(width) {
                return None;
            }
            out.push('=');
            for (i, a) in v.chunks(width).enumerate() {
                let sep = if i > 0 { "," } else { "" };
                match width {
                    4 => write!(out, "{sep}{}", ipv4(a)).ok()?,
                    _ => write!(out, "{sep}{}", ipv6(a)).ok()?,
                }
            }
        }
        ECH if !v.is_empty() => {
            out.push('=');
            codec::base64_encode(v, out);
        }
        PORT | ECH => return None,
        _ if v.is_empty() => {}
        _ => {
            out.push_str("=\"");
            escaped(v, out);
            out.push('"');
        }
    }
    Some(())
}

fn alpn_text(v: &[u8], out: &mut String) -> Option<()> {
    let mut rd = Rd::new(v);
    out.push_str("=\"");
    let mut first = true;
    while !rd.is_done() {
        let id = rd.counted().filter(|id| !id.is_empty())?;
        if !first {
            out.push(',');
        }
        first = false;
        for &b in id {
            if b == b',' || b == b'\\' {
                out.push_str("\\\\");
            }
            escaped(&[b], out);
        }
    }
    if first {
        return None;
    }
    out.push('"');
    Some(())
}
