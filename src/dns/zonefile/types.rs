//! RR type table: mnemonics and the field layout of each type's RDATA.

/// One RDATA field in presentation and wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// Decimal 8-bit number.
    U8,
    /// Decimal 16-bit number.
    U16,
    /// Decimal 32-bit number.
    U32,
    /// 32-bit seconds, BIND units allowed (`1h30m`).
    Ttl,
    /// Domain name, relative to the origin.
    Name,
    /// One character-string (length-prefixed).
    Str,
    /// An optional trailing character-string.
    StrOpt,
    /// One or more character-strings up to the end.
    Strs,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Base64 up to the end (at least one token).
    B64,
    /// Base64 up to the end, possibly empty.
    B64Opt,
    /// Hex up to the end (at least one token).
    Hex,
    /// RR type mnemonic (16 bits).
    Type,
    /// RRSIG time: `YYYYMMDDHHmmSS` or seconds.
    Time,
    /// NSEC-style type bitmap up to the end.
    Bitmap,
    /// Hex salt with 8-bit length, `-` for empty.
    Salt,
    /// Base32hex hash with 8-bit length.
    Hash32,
    /// `xx-xx-xx-xx-xx-xx`.
    Eui48,
    /// `xx-xx-xx-xx-xx-xx-xx-xx`.
    Eui64,
    /// `xxxx:xxxx:xxxx:xxxx` (RFC 6742).
    Ilnp64,
    /// DNSSEC algorithm number or mnemonic.
    Alg,
    /// CERT type number or mnemonic.
    CertType,
    /// One token's bytes without a length prefix, running to the end of RDATA.
    Raw,
    /// CAA tag: alphanumeric character-string.
    CaaTag,
    /// NSAP `0x...` hex with optional dots.
    Nsap,
}

/// How a type's RDATA is written in presentation format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    /// A fixed list of fields.
    Fields(&'static [Field]),
    /// Handled by dedicated code (LOC, SVCB, APL, ...).
    Special,
    /// Only RFC 3597 `\#` is accepted.
    Generic,
    /// Meta or obsolete type that may not appear in a zone.
    Forbidden,
}

use Field::*;

const DS_LIKE: &[Field] = &[U16, Alg, U8, Hex];
const KEY_LIKE: &[Field] = &[U16, U8, Alg, B64];
const SIG_LIKE: &[Field] = &[Type, Alg, U8, Ttl, Time, Time, U16, Name, B64];
const NAME1: &[Field] = &[Name];
const PREF_NAME: &[Field] = &[U16, Name];
const TXT_LIKE: &[Field] = &[Strs];
const TLSA_LIKE: &[Field] = &[U8, U8, U8, Hex];

/// (number, mnemonic, form), sorted by number.
const TYPES: &[(u16, &str, Form)] = &[
    (1, "A", Form::Fields(&[A])),
    (2, "NS", Form::Fields(NAME1)),
    (3, "MD", Form::Fields(NAME1)),
    (4, "MF", Form::Fields(NAME1)),
    (5, "CNAME", Form::Fields(NAME1)),
    (
        6,
        "SOA",
        Form::Fields(&[Name, Name, U32, Ttl, Ttl, Ttl, Ttl]),
    ),
    (7, "MB", Form::Fields(NAME1)),
    (8, "MG", Form::Fields(NAME1)),
    (9, "MR", Form::Fields(NAME1)),
    (10, "NULL", Form::Generic),
    (11, "WKS", Form::Special),
    (12, "PTR", Form::Fields(NAME1)),
    (13, "HINFO", Form::Fields(&[Str, Str])),
    (14, "MINFO", Form::Fields(&[Name, Name])),
    (15, "MX", Form::Fields(PREF_NAME)),
    (16, "TXT", Form::Fields(TXT_LIKE)),
    (17, "RP", Form::Fields(&[Name, Name])),
    (18, "AFSDB", Form::Fields(PREF_NAME)),
    (19, "X25", Form::Fields(&[Str])),
    (20, "ISDN", Form::Fields(&[Str, StrOpt])),
    (21, "RT", Form::Fields(PREF_NAME)),
    (22, "NSAP", Form::Fields(&[Nsap])),
    (23, "NSAP-PTR", Form::Fields(NAME1)),
    (24, "SIG", Form::Fields(SIG_LIKE)),
    (25, "KEY", Form::Fields(KEY_LIKE)),
    (26, "PX", Form::Fields(&[U16, Name, Name])),
    (27, "GPOS", Form::Fields(&[Str, Str, Str])),
    (28, "AAAA", Form::Fields(&[Aaaa])),
    (29, "LOC", Form::Special),
    (30, "NXT", Form::Generic),
    (33, "SRV", Form::Fields(&[U16, U16, U16, Name])),
    (35, "NAPTR", Form::Fields(&[U16, U16, Str, Str, Str, Name])),
    (36, "KX", Form::Fields(PREF_NAME)),
    (37, "CERT", Form::Fields(&[CertType, U16, Alg, B64])),
    (38, "A6", Form::Generic),
    (39, "DNAME", Form::Fields(NAME1)),
    (41, "OPT", Form::Forbidden),
    (42, "APL", Form::Special),
    (43, "DS", Form::Fields(DS_LIKE)),
    (44, "SSHFP", Form::Fields(&[U8, U8, Hex])),
    (45, "IPSECKEY", Form::Special),
    (46, "RRSIG", Form::Fields(SIG_LIKE)),
    (47, "NSEC", Form::Fields(&[Name, Bitmap])),
    (48, "DNSKEY", Form::Fields(KEY_LIKE)),
    (49, "DHCID", Form::Fields(&[B64])),
    (
        50,
        "NSEC3",
        Form::Fields(&[U8, U8, U16, Salt, Hash32, Bitmap]),
    ),
    (51, "NSEC3PARAM", Form::Fields(&[U8, U8, U16, Salt])),
    (52, "TLSA", Form::Fields(TLSA_LIKE)),
    (53, "SMIMEA", Form::Fields(TLSA_LIKE)),
    (55, "HIP", Form::Special),
    (59, "CDS", Form::Fields(DS_LIKE)),
    (60, "CDNSKEY", Form::Fields(KEY_LIKE)),
    (61, "OPENPGPKEY", Form::Fields(&[B64])),
    (62, "CSYNC", Form::Fields(&[U32, U16, Bitmap])),
    (63, "ZONEMD", Form::Fields(&[U32, U8, U8, Hex])),
    (64, "SVCB", Form::Special),
    (65, "HTTPS", Form::Special),
    (99, "SPF", Form::Fields(TXT_LIKE)),
    (103, "UNSPEC", Form::Forbidden),
    (104, "NID", Form::Fields(&[U16, Ilnp64])),
    (105, "L32", Form::Fields(&[U16, A])),
    (106, "L64", Form::Fields(&[U16, Ilnp64])),
    (107, "LP", Form::Fields(PREF_NAME)),
    (108, "EUI48", Form::Fields(&[Eui48])),
    (109, "EUI64", Form::Fields(&[Eui64])),
    (249, "TKEY", Form::Forbidden),
    (250, "TSIG", Form::Forbidden),
    (251, "IXFR", Form::Forbidden),
    (252, "AXFR", Form::Forbidden),
    (253, "MAILB", Form::Forbidden),
    (254, "MAILA", Form::Forbidden),
    (255, "ANY", Form::Forbidden),
    (256, "URI", Form::Fields(&[U16, U16, Raw])),
    (257, "CAA", Form::Fields(&[U8, CaaTag, Raw])),
    (258, "AVC", Form::Fields(TXT_LIKE)),
    (261, "RESINFO", Form::Fields(TXT_LIKE)),
    (32768, "TA", Form::Fields(DS_LIKE)),
    (32769, "DLV", Form::Fields(DS_LIKE)),
];

/// The presentation form of type `t` (unknown types are generic-only).
pub(crate) fn form_of(t: u16) -> Form {
    TYPES
        .binary_search_by_key(&t, |e| e.0)
        .map_or(Form::Generic, |i| TYPES[i].2)
}

/// Type mnemonic -> number (`A`, `NS`, ..., `TYPE123`), case-insensitive.
pub fn type_from_str(s: &str) -> Option<u16> {
    type_from_bytes(s.as_bytes())
}

/// Like [`type_from_str`] on raw token bytes.
pub(crate) fn type_from_bytes(s: &[u8]) -> Option<u16> {
    if let Some(e) = TYPES
        .iter()
        .find(|e| e.1.as_bytes().eq_ignore_ascii_case(s))
    {
        return Some(e.0);
    }
    if !s.get(..4)?.eq_ignore_ascii_case(b"TYPE") {
        return None;
    }
    parse_decimal(&s[4..]).and_then(|v| u16::try_from(v).ok())
}

/// Type number -> mnemonic, or `TYPEnnn` for types without one.
pub fn type_to_string(t: u16) -> String {
    match TYPES.binary_search_by_key(&t, |e| e.0) {
        Ok(i) => TYPES[i].1.to_string(),
        Err(_) => format!("TYPE{t}"),
    }
}

/// Class mnemonic or `CLASSnnn` -> number.
pub(crate) fn class_from_bytes(s: &[u8]) -> Option<u16> {
    const CLASSES: [(&[u8], u16); 4] = [(b"IN", 1), (b"CH", 3), (b"CS", 2), (b"HS", 4)];
    if let Some(&(_, c)) = CLASSES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(c);
    }
    let prefix = s.get(..5)?;
    if !prefix.eq_ignore_ascii_case(b"CLASS") {
        return None;
    }
    parse_decimal(&s[5..]).and_then(|v| u16::try_from(v).ok())
}

/// A plain decimal number (1-10 digits, no sign) as u64.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')))
}

/// DNSSEC algorithm mnemonics (RFC 8624 registry).
pub(crate) const ALGORITHMS: &[(u8, &str)] = &[
    (1, "RSAMD5"),
    (2, "DH"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA-NSEC3-SHA1"),
    (7, "RSASHA1-NSEC3-SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC-GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
    (252, "INDIRECT"),
    (253, "PRIVATEDNS"),
    (254, "PRIVATEOID"),
];

/// CERT type mnemonics (RFC 4398).
pub(crate) const CERT_TYPES: &[(u16, &str)] = &[
    (1, "PKIX"),
    (2, "SPKI"),
    (3, "PGP"),
    (4, "IPKIX"),
    (5, "ISPKI"),
    (6, "IPGP"),
    (7, "ACPKIX"),
    (8, "IACPKIX"),
    (253, "URI"),
    (254, "OID"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics() {
        assert_eq!(type_from_str("a"), Some(1));
        assert_eq!(type_from_str("NSEC3PARAM"), Some(51));
        assert_eq!(type_from_str("TYPE65535"), Some(65535));
        assert_eq!(type_from_str("type1"), Some(1));
        assert_eq!(type_from_str("TYPE65536"), None);
        assert_eq!(type_from_str("TYPE"), None);
        assert_eq!(type_from_str("BOGUS"), None);
        assert_eq!(type_to_string(64), "SVCB");
        assert_eq!(type_to_string(5050), "TYPE5050");
        assert_eq!(class_from_bytes(b"in"), Some(1));
        assert_eq!(class_from_bytes(b"CLASS312"), Some(312));
        assert!(TYPES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
