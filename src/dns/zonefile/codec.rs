//! Base16, base32hex and base64 codecs used by RDATA text forms.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B32HEX: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends the bytes of hex text `s` to `out`; `Err` names the problem.
pub(crate) fn hex_decode(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    for pair in s.chunks_exact(2) {
        let hi = hex_val(pair[0]).ok_or("invalid hex character")?;
        let lo = hex_val(pair[1]).ok_or("invalid hex character")?;
        out.push(hi << 4 | lo);
    }
    Ok(())
}

/// Appends uppercase hex for `data` to `out`.
pub(crate) fn hex_encode(data: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in data {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

fn b64_val(c: u8) -> Option<u32> {
    B64.iter().position(|&x| x == c).map(|p| p as u32)
}

/// Appends the bytes of base64 text `s` (padding required for partial groups) to `out`.
pub(crate) fn base64_decode(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    if !s.len().is_multiple_of(4) {
        return Err("base64 length is not a multiple of 4");
    }
    let groups = s.len() / 4;
    for (i, quad) in s.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != groups) {
            return Err("invalid base64 padding");
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = acc << 6 | b64_val(c).ok_or("invalid base64 character")?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Ok(())
}

/// Appends base64 (with padding) for `data` to `out`.
pub(crate) fn base64_encode(data: &[u8], out: &mut String) {
    for chunk in data.chunks(3) {
        let mut buf = [0u8; 3];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(buf[0]) << 16 | u32::from(buf[1]) << 8 | u32::from(buf[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Appends the bytes of unpadded base32hex text `s` (RFC 4648 §7) to `out`.
pub(crate) fn base32hex_decode(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &c in s {
        let v = B32HEX
            .iter()
            .position(|&x| x == c.to_ascii_uppercase())
            .ok_or("invalid base32hex character")?;
        acc = acc << 5 | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits >= 5 || acc & ((1 << bits) - 1) != 0 {
        return Err("invalid base32hex length");
    }
    Ok(())
}

/// Appends unpadded uppercase base32hex for `data` to `out`.
pub(crate) fn base32hex_encode(data: &[u8], out: &mut String) {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in data {
        acc = acc << 8 | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32HEX[(acc >> bits & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(B32HEX[(acc << (5 - bits) & 31) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let mut s = String::new();
            base64_encode(data, &mut s);
            let mut back = Vec::new();
            base64_decode(s.as_bytes(), &mut back).unwrap();
            assert_eq!(back, data);
        }
        let mut v = Vec::new();
        assert!(base64_decode(b"Zm9v=", &mut v).is_err());
        assert!(base64_decode(b"Zg==Zg==", &mut v).is_err());
    }

    #[test]
    fn base32_and_hex() {
        let mut s = String::new();
        base32hex_encode(b"foobar", &mut s);
        assert_eq!(s, "CPNMUOJ1E8");
        let mut v = Vec::new();
        base32hex_decode(b"cpnmuoj1e8", &mut v).unwrap();
        assert_eq!(v, b"foobar");
        v.clear();
        hex_decode(b"0aFf", &mut v).unwrap();
        assert_eq!(v, [10, 255]);
        assert!(hex_decode(b"0Z", &mut v).is_err());
        let mut h = String::new();
        hex_encode(&[0xab, 1], &mut h);
        assert_eq!(h, "AB01");
    }
}
