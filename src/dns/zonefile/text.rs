//! RDATA wire -> presentation text, and wire-format validation of RFC 3597 data.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::codec;
use super::special;
use super::types::{self, Field, Form};
use crate::dns::name::{Name, wire_name_len};

/// Reads big-endian fields from wire RDATA.
pub(crate) struct Rd<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Rd<'a> {
        Rd { data, pos: 0 }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An uncompressed domain name.
    pub fn name(&mut self) -> Option<Name> {
        let len = wire_name_len(&self.data[self.pos..])?;
        Name::from_wire(self.take(len)?).ok()
    }

    /// A length-prefixed byte string.
    pub fn counted(&mut self) -> Option<&'a [u8]> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }

    /// True when all bytes were read.
    pub fn is_done(&self) -> bool {
        self.pos == self.data.len()
    }
}

/// Presentation text of `rdata`; RFC 3597 form when the type has no text form or the data
/// does not decode.
pub(crate) fn rdata_to_text(rtype: u16, rdata: &[u8]) -> String {
    decode(rtype, rdata).unwrap_or_else(|| generic_text(rdata))
}

/// Does `rdata` decode as valid wire data for `rtype`?
pub(crate) fn wire_is_valid(rtype: u16, rdata: &[u8]) -> bool {
    match types::form_of(rtype) {
        Form::Fields(_) | Form::Special => decode(rtype, rdata).is_some(),
        Form::Generic => true,
        Form::Forbidden => false,
    }
}

fn decode(rtype: u16, rdata: &[u8]) -> Option<String> {
    let mut rd = Rd::new(rdata);
    let mut out = String::new();
    match types::form_of(rtype) {
        Form::Fields(fields) => {
            for &f in fields {
                if f == Field::StrOpt && rd.is_done() {
                    break;
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                field_text(f, &mut rd, &mut out)?;
            }
        }
        Form::Special => special::to_text(rtype, &mut rd, &mut out)?,
        Form::Generic | Form::Forbidden => return None,
    }
    rd.is_done().then_some(out)
}

/// `\# len hex`.
pub(crate) fn generic_text(rdata: &[u8]) -> String {
    let mut s = format!("\\# {}", rdata.len());
    if !rdata.is_empty() {
        s.push(' ');
        codec::hex_encode(rdata, &mut s);
    }
    s
}

fn field_text(f: Field, rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    match f {
        Field::U8 | Field::Alg => write!(out, "{}", rd.u8()?).ok()?,
        Field::U16 | Field::CertType => write!(out, "{}", rd.u16()?).ok()?,
        Field::U32 | Field::Ttl => write!(out, "{}", rd.u32()?).ok()?,
        Field::Name => write!(out, "{}", rd.name()?).ok()?,
        Field::Str | Field::StrOpt => quoted(rd.counted()?, out),
        Field::Strs => {
            quoted(rd.counted()?, out);
            while !rd.is_done() {
                out.push(' ');
                quoted(rd.counted()?, out);
            }
        }
        Field::A => write!(out, "{}", ipv4(rd.take(4)?)).ok()?,
        Field::Aaaa => write!(out, "{}", ipv6(rd.take(16)?)).ok()?,
        Field::B64 | Field::B64Opt => {
            let data = rd.rest();
            if data.is_empty() && f == Field::B64 {
                return None;
            }
            codec::base64_encode(data, out);
        }
        Field::Hex => nonempty_hex(rd.rest(), out)?,
        Field::Type => out.push_str(&types::type_to_string(rd.u16()?)),
        Field::Time => time_text(rd.u32()?, out),
        Field::Bitmap => bitmap_text(rd.rest(), out)?,
        Field::Salt => match rd.counted()? {
            [] => out.push('-'),
            salt => codec::hex_encode(salt, out),
        },
        Field::Hash32 => codec::base32hex_encode(rd.counted().filter(|h| !h.is_empty())?, out),
        Field::Eui48 => eui_text(rd.take(6)?, out),
        Field::Eui64 => eui_text(rd.take(8)?, out),
        Field::Ilnp64 => {
            let b = rd.take(8)?;
            let groups: Vec<String> = b
                .chunks(2)
                .map(|c| format!("{:02x}{:02x}", c[0], c[1]))
                .collect();
            out.push_str(&groups.join(":"));
        }
        Field::Raw => quoted(rd.rest(), out),
        Field::CaaTag => {
            let tag = rd
                .counted()
                .filter(|t| !t.is_empty() && t.iter().all(u8::is_ascii_alphanumeric))?;
            out.push_str(std::str::from_utf8(tag).ok()?);
        }
        Field::Nsap => {
            out.push_str("0x");
            nonempty_hex(rd.rest(), out)?;
        }
    }
    Some(())
}

fn nonempty_hex(data: &[u8], out: &mut String) -> Option<()> {
    if data.is_empty() {
        return None;
    }
    codec::hex_encode(data, out);
    Some(())
}

/// IPv4 address from exactly 4 bytes.
pub(crate) fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// IPv6 address from exactly 16 bytes.
pub(crate) fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// Writes `data` as a quoted character-string with escapes.
pub(crate) fn quoted(data: &[u8], out: &mut String) {
    out.push('"');
    escaped(data, out);
    out.push('"');
}

/// Writes `data` with `"` and `\` escaped and non-printables as `\DDD`.
pub(crate) fn escaped(data: &[u8], out: &mut String) {
    for &b in data {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

fn eui_text(b: &[u8], out: &mut String) {
    let parts: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    out.push_str(&parts.join("-"));
}

fn time_text(t: u32, out: &mut String) {
    let secs = i64::from(t);
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes the types of an NSEC-style bitmap; `None` when malformed.
pub(crate) fn bitmap_text(mut data: &[u8], out: &mut String) -> Option<()> {
    let mut last_window = None;
    while !data.is_empty() {
        let (window, len) = (*data.first()?, usize::from(*data.get(1)?));
        if !(1..=32).contains(&len) || last_window.is_some_and(|w| w >= window) {
            return None;
        }
        last_window = Some(window);
        let bits = data.get(2..2 + len)?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let t = u16::from(window) << 8 | (i * 8 + bit) as u16;
                    if !out.is_empty() && !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push_str(&types::type_to_string(t));
                }
            }
        }
        data = &data[2 + len..];
    }
    Some(())
}
