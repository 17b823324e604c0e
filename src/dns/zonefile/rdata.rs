//! RDATA presentation -> wire for field-list types, plus the token cursor and shared helpers.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::PErr;
use super::codec;
use super::lexer::Token;
use super::types::{self, ALGORITHMS, CERT_TYPES, Field, Form};
use crate::dns::name::{Name, unescape_at};

/// Reads the tokens of one record's RDATA.
pub(crate) struct Cursor<'a> {
    text: &'a [u8],
    toks: &'a [Token],
    pos: usize,
    line: u32,
}

impl<'a> Cursor<'a> {
    /// A cursor over `toks` (byte ranges of `text`); `line` is used when tokens run out.
    pub fn new(text: &'a [u8], toks: &'a [Token], line: u32) -> Cursor<'a> {
        Cursor {
            text,
            toks,
            pos: 0,
            line,
        }
    }

    /// The next token without consuming it.
    pub fn peek(&self) -> Option<(&'a [u8], Token)> {
        self.toks
            .get(self.pos)
            .map(|t| (&self.text[t.start..t.end], *t))
    }

    /// Consumes and returns the next token.
    pub fn next_tok(&mut self) -> Option<(&'a [u8], Token)> {
        let item = self.peek()?;
        self.pos += 1;
        self.line = item.1.line;
        Some(item)
    }

    /// Consumes the next token or fails with "missing {what}".
    pub fn expect(&mut self, what: &str) -> Result<&'a [u8], PErr> {
        match self.next_tok() {
            Some((b, _)) => Ok(b),
            None => Err(PErr::new(self.line, format!("missing {what}"))),
        }
    }

    /// An error at the line of the most recently consumed token.
    pub fn err(&self, msg: impl Into<String>) -> PErr {
        PErr::new(self.line, msg)
    }

    /// Concatenates all remaining tokens into `buf`; returns how many there were.
    pub fn rest(&mut self, buf: &mut Vec<u8>) -> usize {
        let mut n = 0;
        while let Some((b, _)) = self.next_tok() {
            buf.extend_from_slice(b);
            n += 1;
        }
        n
    }
}

/// Types whose text form can only make valid RDATA: fixed-size addresses, names, numbers
/// and character-strings (A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV).
fn always_valid(rtype: u16) -> bool {
    matches!(rtype, 1 | 2 | 5 | 6 | 12 | 15 | 16 | 28 | 33)
}

/// Parses the RDATA of type `rtype` from `cur` into `out`.
pub(crate) fn parse_rdata(
    rtype: u16,
    cur: &mut Cursor<'_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), PErr> {
    if matches!(cur.peek(), Some((b"\\#", t)) if !t.quoted) {
        cur.next_tok();
        parse_generic(cur, out)?;
        if !super::text::wire_is_valid(rtype, out) {
            return Err(cur.err("RFC 3597 data is not valid for this type"));
        }
        canonical_generic(rtype, out);
    } else {
        match types::form_of(rtype) {
            Form::Fields(fields) => {
                for &f in fields {
                    parse_field(f, cur, origin, out)?;
                }
            }
            Form::Special => super::special::parse_special(rtype, cur, origin, out)?,
            Form::Generic => return Err(cur.err("type has no text form; use \\# (RFC 3597)")),
            Form::Forbidden => return Err(cur.err("record type not allowed in a zone")),
        }
        // Text that yields no valid RDATA (e.g. an empty DHCID digest) would print as
        // `\#` data that reads back as invalid. The text of the common types (addresses,
        // names, numbers, character-strings) always makes valid RDATA: they skip the check,
        // which decodes the whole record (a tenth of the time it takes to load a big zone).
        if !always_valid(rtype) && !super::text::wire_is_valid(rtype, out) {
            return Err(cur.err("RDATA is not valid for this type"));
        }
    }
    if let Some((_, t)) = cur.peek() {
        return Err(PErr::new(t.line, "trailing data after RDATA"));
    }
    if out.len() > 65535 {
        return Err(cur.err("RDATA longer than 65535 bytes"));
    }
    Ok(())
}

/// `\# len hex...` (the `\#` already consumed).
fn parse_generic(cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let len = cur.expect("RDATA length")?;
    let len = types::parse_decimal(len)
        .filter(|&n| n <= 65535)
        .ok_or_else(|| cur.err("invalid RFC 3597 length"))?;
    let mut hex = Vec::new();
    cur.rest(&mut hex);
    codec::hex_decode(&hex, out).map_err(|e| cur.err(e))?;
    if out.len() as u64 != len {
        return Err(cur.err(format!(
            "RFC 3597 length {len} does not match {} bytes of data",
            out.len()
        )));
    }
    Ok(())
}

fn parse_field(
    f: Field,
    cur: &mut Cursor<'_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), PErr> {
    match f {
        Field::U8 => out.push(number(cur.expect("number")?, u8::MAX.into(), cur)? as u8),
        Field::U16 => put_u16(
            out,
            number(cur.expect("number")?, u16::MAX.into(), cur)? as u16,
        ),
        Field::U32 => out.extend_from_slice(
            &(number(cur.expect("number")?, u32::MAX.into(), cur)? as u32).to_be_bytes(),
        ),
        Field::Ttl => {
            let v = parse_ttl(cur.expect("time value")?).map_err(|e| cur.err(e))?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        Field::Name => name(cur.expect("domain name")?, origin, cur, out)?,
        Field::Str => char_string(cur.expect("character-string")?, cur, out)?,
        Field::StrOpt => {
            if let Some((b, _)) = cur.next_tok() {
                char_string(b, cur, out)?;
            }
        }
        Field::Strs => {
            split_strings(cur.expect("character-string")?, cur, out)?;
            while let Some((b, _)) = cur.next_tok() {
                split_strings(b, cur, out)?;
            }
        }
        Field::A => out.extend_from_slice(&ipv4(cur.expect("IPv4 address")?, cur)?.octets()),
        Field::Aaaa => out.extend_from_slice(&ipv6(cur.expect("IPv6 address")?, cur)?.octets()),
        Field::B64 | Field::B64Opt | Field::Hex => rest_encoded(f, cur, out)?,
        Field::Type => put_u16(out, rr_type(cur.expect("RR type")?, cur)?),
        Field::Time => out.extend_from_slice(
            &parse_time(cur.expect("time")?)
                .ok_or_else(|| cur.err("invalid time"))?
                .to_be_bytes(),
        ),
        Field::Bitmap => type_bitmap(cur, out)?,
        Field::Salt => salt(cur.expect("salt")?, cur, out)?,
        Field::Hash32 => hash32(cur.expect("hashed owner name")?, cur, out)?,
        Field::Eui48 => eui(cur.expect("EUI-48 address")?, 6, b'-', cur, out)?,
        Field::Eui64 => eui(cur.expect("EUI-64 address")?, 8, b'-', cur, out)?,
        Field::Ilnp64 => ilnp64(cur.expect("locator")?, cur, out)?,
        Field::Alg => out.push(mnemonic(cur.expect("algorithm")?, ALGORITHMS, cur)?),
        Field::CertType => put_u16(
            out,
            mnemonic(cur.expect("certificate type")?, CERT_TYPES, cur)?,
        ),
        Field::Raw => unescape(cur.expect("value")?, out).map_err(|e| cur.err(e))?,
        Field::CaaTag => caa_tag(cur.expect("CAA tag")?, cur, out)?,
        Field::Nsap => nsap(cur.expect("NSAP address")?, cur, out)?,
    }
    Ok(())
}

/// Appends a big-endian u16.
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A decimal number no larger than `max`.
pub(crate) fn number(b: &[u8], max: u64, cur: &Cursor<'_>) -> Result<u64, PErr> {
    match types::parse_decimal(b) {
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(cur.err(format!("number out of range (max {max})"))),
        None => Err(cur.err(format!("invalid number '{}'", String::from_utf8_lossy(b)))),
    }
}

/// RFC 3597 data of a type with a text form, as that text form would have given it (names
/// lowercased): printed and parsed once more, so that a zone reads back as it loaded.
fn canonical_generic(rtype: u16, out: &mut Vec<u8>) {
    if !matches!(types::form_of(rtype), Form::Fields(_) | Form::Special) {
        return;
    }
    let line = format!(
        ". 0 IN {} {}\n",
        types::type_to_string(rtype),
        super::text::rdata_to_text(rtype, out)
    );
    let parsed = super::parser::parse(line.as_bytes(), std::path::Path::new(""), &Name::root());
    if let Ok(Some(r)) = parsed.map(|r| r.into_iter().next()) {
        *out = r.rdata;
    }
}

/// A domain name relative to `origin`, appended in wire form and lowercased (as knotd does).
pub(crate) fn name(
    b: &[u8],
    origin: &Name,
    cur: &Cursor<'_>,
    out: &mut Vec<u8>,
) -> Result<(), PErr> {
    let n = Name::parse_bytes(b, Some(origin))
        .map_err(|e| cur.err(format!("invalid domain name: {e}")))?;
    out.extend(n.wire().iter().map(u8::to_ascii_lowercase));
    Ok(())
}

/// Decodes `\X` and `\DDD` escapes of `b` into `out`.
pub(crate) fn unescape(b: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let (byte, used) = unescape_at(b, i).map_err(|_| "bad escape")?;
            out.push(byte);
            i += used;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(())
}

/// One length-prefixed character-string.
pub(crate) fn char_string(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let at = out.len();
    out.push(0);
    unescape(b, out).map_err(|e| cur.err(e))?;
    let len = out.len() - at - 1;
    if len > 255 {
        return Err(cur.err("character-string longer than 255 bytes"));
    }
    out[at] = len as u8;
    Ok(())
}

/// Like [`char_string`], but text longer than 255 bytes becomes several strings (as knotd does).
fn split_strings(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let mut text = Vec::new();
    unescape(b, &mut text).map_err(|e| cur.err(e))?;
    if text.is_empty() {
        out.push(0);
    }
    for chunk in text.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    Ok(())
}

fn utf8<'b>(b: &'b [u8], cur: &Cursor<'_>) -> Result<&'b str, PErr> {
    std::str::from_utf8(b).map_err(|_| cur.err("invalid characters"))
}

/// An IPv4 address in dotted-quad form.
pub(crate) fn ipv4(b: &[u8], cur: &Cursor<'_>) -> Result<Ipv4Addr, PErr> {
    let s = utf8(b, cur)?;
    s.parse()
        .map_err(|_| cur.err(format!("invalid IPv4 address '{s}'")))
}

/// An IPv6 address.
pub(crate) fn ipv6(b: &[u8], cur: &Cursor<'_>) -> Result<Ipv6Addr, PErr> {
    let s = utf8(b, cur)?;
    s.parse()
        .map_err(|_| cur.err(format!("invalid IPv6 address '{s}'")))
}

fn rest_encoded(f: Field, cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let mut buf = Vec::new();
    let n = cur.rest(&mut buf);
    if n == 0 && f != Field::B64Opt {
        return Err(cur.err("missing encoded data"));
    }
    let res = if f == Field::Hex {
        codec::hex_decode(&buf, out)
    } else {
        codec::base64_decode(&buf, out)
    };
    res.map_err(|e| cur.err(e))
}

fn rr_type(b: &[u8], cur: &Cursor<'_>) -> Result<u16, PErr> {
    types::type_from_bytes(b)
        .ok_or_else(|| cur.err(format!("unknown RR type '{}'", String::from_utf8_lossy(b))))
}

fn mnemonic<T: TryFrom<u64> + Copy>(
    b: &[u8],
    table: &[(T, &str)],
    cur: &Cursor<'_>,
) -> Result<T, PErr> {
    if let Some(&(v, _)) = table
        .iter()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(b))
    {
        return Ok(v);
    }
    let max = if size_of::<T>() == 1 { 255 } else { 65535 };
    let v = number(b, max, cur)?;
    T::try_from(v).map_err(|_| cur.err("number out of range"))
}

/// A TTL: seconds, or BIND units (`1w2d3h4m5s`, case-insensitive).
pub(crate) fn parse_ttl(b: &[u8]) -> Result<u32, &'static str> {
    if b.is_empty() {
        return Err("missing TTL");
    }
    let (mut total, mut cur, mut digits) = (0u64, 0u64, 0usize);
    for &c in b {
        if c.is_ascii_digit() {
            cur = cur * 10 + u64::from(c - b'0');
            digits += 1;
            if cur > u64::from(u32::MAX) {
                return Err("TTL out of range");
            }
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86400,
            b'w' => 604800,
            _ => return Err("invalid time unit"),
        };
        if digits == 0 {
            return Err("invalid time value");
        }
        total += cur * mult;
        (cur, digits) = (0, 0);
        if total > u64::from(u32::MAX) {
            return Err("TTL out of range");
        }
    }
    total += cur;
    u32::try_from(total).map_err(|_| "TTL out of range")
}

/// RRSIG time: `YYYYMMDDHHmmSS` (UTC, serial-number arithmetic) or plain seconds.
pub(crate) fn parse_time(b: &[u8]) -> Option<u32> {
    if b.len() != 14 {
        return types::parse_decimal(b).and_then(|v| u32::try_from(v).ok());
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
    let (y, mo, d) = (num(0..4), num(4..6), num(6..8));
    let (h, mi, s) = (num(8..10), num(10..12), num(12..14));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970
        || !(1..=12).contains(&mo)
        || d < 1
        || d > mdays[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    Some(secs as u64 as u32)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// NSEC-style type bitmap from the remaining tokens (RFC 4034 §4.1.2).
fn type_bitmap(cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let mut list = Vec::new();
    while let Some((b, _)) = cur.next_tok() {
        list.push(rr_type(b, cur)?);
    }
    encode_bitmap(&mut list, out);
    Ok(())
}

/// Encodes the (unsorted, possibly duplicated) types as window blocks.
pub(crate) fn encode_bitmap(list: &mut [u16], out: &mut Vec<u8>) {
    list.sort_unstable();
    let mut i = 0;
    while i < list.len() {
        let window = list[i] >> 8;
        let mut bits = [0u8; 32];
        let mut max = 0;
        while i < list.len() && list[i] >> 8 == window {
            let low = usize::from(list[i] as u8);
            bits[low / 8] |= 0x80 >> (low % 8);
            max = max.max(low / 8);
            i += 1;
        }
        out.push(window as u8);
        out.push(max as u8 + 1);
        out.extend_from_slice(&bits[..=max]);
    }
}

fn salt(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    if b == b"-" {
        out.push(0);
        return Ok(());
    }
    let at = out.len();
    out.push(0);
    codec::hex_decode(b, out).map_err(|e| cur.err(e))?;
    let len = out.len() - at - 1;
    out[at] = u8::try_from(len).map_err(|_| cur.err("salt longer than 255 bytes"))?;
    Ok(())
}

fn hash32(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let at = out.len();
    out.push(0);
    codec::base32hex_decode(b, out).map_err(|e| cur.err(e))?;
    let len = out.len() - at - 1;
    if len == 0 {
        return Err(cur.err("empty hash"));
    }
    out[at] = u8::try_from(len).map_err(|_| cur.err("hash longer than 255 bytes"))?;
    Ok(())
}

fn eui(b: &[u8], groups: usize, sep: u8, cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let parts: Vec<&[u8]> = b.split(|&c| c == sep).collect();
    if parts.len() != groups || parts.iter().any(|p| p.len() != 2) {
        return Err(cur.err("invalid EUI address length"));
    }
    for p in parts {
        codec::hex_decode(p, out).map_err(|e| cur.err(e))?;
    }
    Ok(())
}

fn ilnp64(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let parts: Vec<&[u8]> = b.split(|&c| c == b':').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
        return Err(cur.err("invalid ILNP locator"));
    }
    for p in parts {
        let s = utf8(p, cur)?;
        let v = u16::from_str_radix(s, 16).map_err(|_| cur.err("invalid ILNP locator"))?;
        put_u16(out, v);
    }
    Ok(())
}

fn caa_tag(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    if b.is_empty() || b.len() > 255 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return Err(cur.err("invalid CAA tag"));
    }
    out.push(b.len() as u8);
    out.extend_from_slice(b);
    Ok(())
}

fn nsap(b: &[u8], cur: &Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let hex = match b {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => return Err(cur.err("NSAP address must start with 0x")),
    };
    let digits: Vec<u8> = hex.iter().copied().filter(|&c| c != b'.').collect();
    if digits.is_empty() {
        return Err(cur.err("empty NSAP address"));
    }
    codec::hex_decode(&digits, out).map_err(|e| cur.err(e))
}
