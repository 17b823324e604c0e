//! Types whose text form is not a plain field list: WKS, APL, IPSECKEY, HIP (and dispatch to
//! LOC and SVCB/HTTPS).

use std::fmt::Write as _;

use super::PErr;
use super::codec;
use super::rdata::{self, Cursor, put_u16};
use super::text::{Rd, ipv4, ipv6};
use super::{loc, svcb};
use crate::dns::name::Name;

/// Parses the RDATA of a special type.
pub(crate) fn parse_special(
    rtype: u16,
    cur: &mut Cursor<'_>,
    origin: &Name,
    out: &mut Vec<u8>,
) -> Result<(), PErr> {
    match rtype {
        11 => wks(cur, out),
        29 => loc::parse(cur, out),
        42 => apl(cur, out),
        45 => ipseckey(cur, origin, out),
        55 => hip(cur, origin, out),
        64 | 65 => svcb::parse(cur, origin, out),
        _ => Err(cur.err("type has no text form; use \\# (RFC 3597)")),
    }
}

/// Writes the text of a special type; `None` when the wire data is malformed.
pub(crate) fn to_text(rtype: u16, rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    match rtype {
        11 => wks_text(rd, out),
        29 => loc::to_text(rd, out),
        42 => apl_text(rd, out),
        45 => ipseckey_text(rd, out),
        55 => hip_text(rd, out),
        64 | 65 => svcb::to_text(rd, out),
        _ => None,
    }
}

/// A few service names for WKS (BIND accepts /etc/services names).
const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("sunrpc", 111),
    ("nntp", 119),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("https", 443),
];

fn wks(cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    out.extend_from_slice(&rdata::ipv4(cur.expect("IPv4 address")?, cur)?.octets());
    let proto = cur.expect("protocol")?;
    let proto = match proto.to_ascii_lowercase().as_slice() {
        b"tcp" => 6,
        b"udp" => 17,
        _ => rdata::number(proto, 255, cur)? as u8,
    };
    out.push(proto);
    let mut bits = Vec::new();
    while let Some((b, _)) = cur.next_tok() {
        let port = match SERVICES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(b))
        {
            Some(&(_, p)) => p,
            None => rdata::number(b, 65535, cur)? as u16,
        };
        let byte = usize::from(port / 8);
        if bits.len() <= byte {
            bits.resize(byte + 1, 0);
        }
        bits[byte] |= 0x80 >> (port % 8);
    }
    out.extend_from_slice(&bits);
    Ok(())
}

fn wks_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    write!(out, "{} {}", ipv4(rd.take(4)?), rd.u8()?).ok()?;
    for (i, byte) in rd.rest().iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                write!(out, " {}", i * 8 + bit).ok()?;
            }
        }
    }
    Some(())
}

fn apl(cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    while let Some((b, _)) = cur.next_tok() {
        let (neg, b) = match b {
            [b'!', rest @ ..] => (true, rest),
            _ => (false, b),
        };
        let bad = || cur.err("invalid APL item");
        let colon = b.iter().position(|&c| c == b':').ok_or_else(bad)?;
        let slash = b.iter().rposition(|&c| c == b'/').ok_or_else(bad)?;
        if slash < colon {
            return Err(bad());
        }
        let family = rdata::number(&b[..colon], 65535, cur)? as u16;
        let addr = &b[colon + 1..slash];
        let mut bytes = match family {
            1 => rdata::ipv4(addr, cur)?.octets().to_vec(),
            2 => rdata::ipv6(addr, cur)?.octets().to_vec(),
            _ => return Err(cur.err("unsupported APL address family")),
        };
        let prefix = rdata::number(&b[slash + 1..], (bytes.len() * 8) as u64, cur)? as u8;
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        put_u16(out, family);
        out.push(prefix);
        out.push(bytes.len() as u8 | if neg { 0x80 } else { 0 });
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

fn apl_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    while !rd.is_done() {
        let (family, prefix, nlen) = (rd.u16()?, rd.u8()?, rd.u8()?);
        let data = rd.take(usize::from(nlen & 0x7f))?;
        if !out.is_empty() {
            out.push(' ');
        }
        if nlen & 0x80 != 0 {
            out.push('!');
        }
        let mut full = [0u8; 16];
        let width = match family {
            1 => 4,
            2 => 16,
            _ => return None,
        };
        if data.len() > width || usize::from(prefix) > width * 8 {
            return None;
        }
        full[..data.len()].copy_from_slice(data);
        match family {
            1 => write!(out, "1:{}/{prefix}", ipv4(&full[..4])).ok()?,
            _ => write!(out, "2:{}/{prefix}", ipv6(&full)).ok()?,
        }
    }
    Some(())
}

fn ipseckey(cur: &mut Cursor<'_>, origin: &Name, out: &mut Vec<u8>) -> Result<(), PErr> {
    out.push(rdata::number(cur.expect("precedence")?, 255, cur)? as u8);
    let gw_type = rdata::number(cur.expect("gateway type")?, 255, cur)? as u8;
    out.push(gw_type);
    out.push(rdata::number(cur.expect("algorithm")?, 255, cur)? as u8);
    let gw = cur.expect("gateway")?;
    match gw_type {
        0 if gw == b"." => {}
        0 => return Err(cur.err("gateway must be '.' for gateway type 0")),
        1 => out.extend_from_slice(&rdata::ipv4(gw, cur)?.octets()),
        2 => out.extend_from_slice(&rdata::ipv6(gw, cur)?.octets()),
        3 => rdata::name(gw, origin, cur, out)?,
        _ => return Err(cur.err("invalid gateway type")),
    }
    let mut key = Vec::new();
    cur.rest(&mut key);
    codec::base64_decode(&key, out).map_err(|e| cur.err(e))
}

fn ipseckey_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    let (prec, gw_type, alg) = (rd.u8()?, rd.u8()?, rd.u8()?);
    write!(out, "{prec} {gw_type} {alg} ").ok()?;
    match gw_type {
        0 => out.push('.'),
        1 => write!(out, "{}", ipv4(rd.take(4)?)).ok()?,
        2 => write!(out, "{}", ipv6(rd.take(16)?)).ok()?,
        3 => write!(out, "{}", rd.name()?).ok()?,
        _ => return None,
    }
    let key = rd.rest();
    if !key.is_empty() {
        out.push(' ');
        codec::base64_encode(key, out);
    }
    Some(())
}

fn hip(cur: &mut Cursor<'_>, origin: &Name, out: &mut Vec<u8>) -> Result<(), PErr> {
    let alg = rdata::number(cur.expect("PK algorithm")?, 255, cur)? as u8;
    let mut hit = Vec::new();
    codec::hex_decode(cur.expect("HIT")?, &mut hit).map_err(|e| cur.err(e))?;
    let mut pk = Vec::new();
    codec::base64_decode(cur.expect("public key")?, &mut pk).map_err(|e| cur.err(e))?;
    if hit.is_empty() || hit.len() > 255 || pk.is_empty() || pk.len() > 65535 {
        return Err(cur.err("invalid HIT or public key length"));
    }
    out.push(hit.len() as u8);
    out.push(alg);
    put_u16(out, pk.len() as u16);
    out.extend_from_slice(&hit);
    out.extend_from_slice(&pk);
    while let Some((b, _)) = cur.next_tok() {
        rdata::name(b, origin, cur, out)?;
    }
    Ok(())
}

fn hip_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    let (hit_len, alg, pk_len) = (rd.u8()?, rd.u8()?, rd.u16()?);
    write!(out, "{alg} ").ok()?;
    codec::hex_encode(rd.take(usize::from(hit_len))?, out);
    out.push(' ');
    codec::base64_encode(rd.take(usize::from(pk_len))?, out);
    while !rd.is_done() {
        write!(out, " {}", rd.name()?).ok()?;
    }
    Some(())
}
