//! LOC records (RFC 1876): text form and wire encoding.

use std::fmt::Write as _;

use super::PErr;
use super::rdata::Cursor;
use super::text::Rd;

const EQUATOR: i64 = 1 << 31;
const ALT_BASE: i64 = 10_000_000;

/// Parses `d1 [m1 [s1]] {N|S} d2 [m2 [s2]] {E|W} alt[m] [siz[m] [hp[m] [vp[m]]]]`.
pub(crate) fn parse(cur: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<(), PErr> {
    let lat = coordinate(cur, 90, (b'N', b'S'))?;
    let lon = coordinate(cur, 180, (b'E', b'W'))?;
    let alt = meters(cur.expect("altitude")?, true).ok_or_else(|| cur.err("invalid altitude"))?;
    if !(-ALT_BASE..=4_284_967_295).contains(&alt) {
        return Err(cur.err("altitude out of range"));
    }
    let mut prec = [100i64, 1_000_000, 1000];
    for p in prec.iter_mut() {
        let Some((b, _)) = cur.next_tok() else { break };
        *p = meters(b, false)
            .filter(|&v| v <= 9_000_000_000)
            .ok_or_else(|| cur.err("invalid LOC size or precision"))?;
    }
    out.push(0);
    out.extend(prec.iter().map(|&cm| encode_precision(cm)));
    out.extend_from_slice(&(lat as u32).to_be_bytes());
    out.extend_from_slice(&(lon as u32).to_be_bytes());
    out.extend_from_slice(&((alt + ALT_BASE) as u32).to_be_bytes());
    Ok(())
}

/// Degrees, optional minutes and seconds, then a hemisphere letter; returns the wire value.
fn coordinate(cur: &mut Cursor<'_>, max_deg: i64, hemi: (u8, u8)) -> Result<i64, PErr> {
    let mut parts = [0i64; 3];
    let limits = [max_deg, 59, 59_999];
    let mut i = 0;
    let sign = loop {
        let b = cur.expect("LOC coordinate")?;
        if let [c] = b {
            let c = c.to_ascii_uppercase();
            if c == hemi.0 || c == hemi.1 {
                break if c == hemi.0 { 1 } else { -1 };
            }
        }
        if i == 3 {
            return Err(cur.err("invalid LOC coordinate"));
        }
        let v = if i == 2 {
            seconds(b)
        } else {
            super::types::parse_decimal(b).map(|v| v as i64)
        };
        parts[i] = v
            .filter(|&v| v <= limits[i])
            .ok_or_else(|| cur.err("invalid LOC coordinate"))?;
        i += 1;
    };
    let value = (parts[0] * 3600 + parts[1] * 60) * 1000 + parts[2];
    if value > max_deg * 3_600_000 {
        return Err(cur.err("LOC coordinate out of range"));
    }
    Ok(EQUATOR + sign * value)
}

/// Seconds with up to three decimals, in thousandths.
fn seconds(b: &[u8]) -> Option<i64> {
    fixed_point(b, 3)
}

/// `[-]int[.frac]` with at most `decimals` fraction digits, scaled by 10^decimals.
fn fixed_point(b: &[u8], decimals: usize) -> Option<i64> {
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], &b[p + 1..]),
        None => (b, &b""[..]),
    };
    if int.is_empty() || frac.len() > decimals || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = super::types::parse_decimal(int)? as i64;
    for k in 0..decimals {
        v = v * 10 + frac.get(k).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(v)
}

/// Meters (optional trailing `m`) in centimeters.
fn meters(b: &[u8], signed: bool) -> Option<i64> {
    let b = b
        .strip_suffix(b"m")
        .or_else(|| b.strip_suffix(b"M"))
        .unwrap_or(b);
    match b {
        [b'-', rest @ ..] if signed => fixed_point(rest, 2).map(|v| -v),
        _ => fixed_point(b, 2),
    }
}

/// RFC 1876 mantissa/exponent byte for a value in centimeters.
fn encode_precision(cm: i64) -> u8 {
    let (mut m, mut e) = (cm, 0u8);
    while m > 9 {
        m /= 10;
        e += 1;
    }
    (m as u8) << 4 | e
}

fn decode_precision(b: u8) -> Option<u64> {
    let (m, e) = (u64::from(b >> 4), u32::from(b & 15));
    (m <= 9 && e <= 9).then(|| m * 10u64.pow(e))
}

/// Writes the text form of LOC RDATA.
pub(crate) fn to_text(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    if rd.u8()? != 0 {
        return None;
    }
    let (size, hp, vp) = (rd.u8()?, rd.u8()?, rd.u8()?);
    let (lat, lon, alt) = (rd.u32()?, rd.u32()?, rd.u32()?);
    // Beyond the poles or the antimeridian there is no text form (BIND refuses such wire
    // data too); the record is only expressible as `\#`, which the parser then rejects.
    let (lat, lon) = (i64::from(lat) - EQUATOR, i64::from(lon) - EQUATOR);
    if lat.abs() > 90 * 3_600_000 || lon.abs() > 180 * 3_600_000 {
        return None;
    }
    coord_text(lat, ('N', 'S'), out);
    out.push(' ');
    coord_text(lon, ('E', 'W'), out);
    let alt = i64::from(alt) - ALT_BASE;
    let sign = if alt < 0 { "-" } else { "" };
    write!(out, " {sign}{}.{:02}m", alt.abs() / 100, alt.abs() % 100).ok()?;
    for p in [size, hp, vp] {
        let cm = decode_precision(p)?;
        write!(out, " {}.{:02}m", cm / 100, cm % 100).ok()?;
    }
    Some(())
}

fn coord_text(v: i64, hemi: (char, char), out: &mut String) {
    let h = if v >= 0 { hemi.0 } else { hemi.1 };
    let v = v.abs();
    let (deg, rest) = (v / 3_600_000, v % 3_600_000);
    let (min, ms) = (rest / 60_000, rest % 60_000);
    let _ = write!(out, "{deg} {min} {}.{:03} {h}", ms / 1000, ms % 1000);
}
