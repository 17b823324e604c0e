//! Domain names in uncompressed wire format.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest encoded name (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Uncompressed wire-format domain name (length-prefixed labels, ending in the root label), case preserved.
#[derive(Clone)]
pub struct Name {
    wire: Box<[u8]>,
}

/// Why a name could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label exceeds 63 bytes.
    #[error("label longer than 63 bytes")]
    LabelTooLong,
    /// The encoded name exceeds 255 bytes.
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// Two dots in a row, a leading dot, or an empty name.
    #[error("empty label")]
    EmptyLabel,
    /// A malformed `\DDD` or a trailing backslash.
    #[error("bad escape")]
    BadEscape,
    /// A relative name (or `@`) was given without an origin.
    #[error("relative name without origin")]
    NoOrigin,
    /// Wire data is truncated, has trailing bytes or uses compression.
    #[error("malformed wire-format name")]
    BadWire,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name {
            wire: Box::new([0]),
        }
    }

    /// Decodes exactly one uncompressed wire-format name (no pointers, no trailing bytes).
    pub fn from_wire(bytes: &[u8]) -> Result<Name, NameError> {
        match wire_name_len(bytes) {
            Some(len) if len == bytes.len() => Ok(Name { wire: bytes.into() }),
            Some(_) => Err(NameError::BadWire),
            None => Err(NameError::BadWire),
        }
    }

    /// Parses presentation format: `\DDD` and `\X` escapes, `@` for the origin, `.` for the
    /// root; a name without a trailing dot is relative and gets `origin` appended.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Name, NameError> {
        Name::parse_bytes(text.as_bytes(), origin)
    }

    /// Like [`Name::parse`] on raw bytes (zone files need not be UTF-8).
    pub(crate) fn parse_bytes(text: &[u8], origin: Option<&Name>) -> Result<Name, NameError> {
        if text == b"@" {
            return origin.cloned().ok_or(NameError::NoOrigin);
        }
        if text == b"." {
            return Ok(Name::root());
        }
        let mut wire = Vec::with_capacity(text.len() + 2);
        let absolute = encode_labels(text, &mut wire)?;
        if absolute {
            wire.push(0);
        } else {
            let origin = origin.ok_or(NameError::NoOrigin)?;
            wire.extend_from_slice(&origin.wire);
        }
        if wire.len() > MAX_NAME {
            return Err(NameError::NameTooLong);
        }
        Ok(Name { wire: wire.into() })
    }

    /// The wire encoding, including the terminating root label.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Number of labels, not counting the root label (the root has 0).
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Labels from left to right, excluding the root label.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let len = usize::from(self.wire[pos]);
            if len == 0 {
                return None;
            }
            let label = &self.wire[pos + 1..pos + 1 + len];
            pos += 1 + len;
            Some(label)
        })
    }

    /// True for the root name.
    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// True when the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.wire.len() >= 2 && self.wire[0] == 1 && self.wire[1] == b'*'
    }

    /// The name without its first label; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + usize::from(self.wire[0]);
        Some(Name {
            wire: self.wire[skip..].into(),
        })
    }

    /// The last `n` labels (`n` is clamped to [`Name::label_count`]).
    pub fn suffix(&self, n: usize) -> Name {
        let count = self.label_count();
        let mut pos = 0;
        for _ in 0..count.saturating_sub(n) {
            pos += 1 + usize::from(self.wire[pos]);
        }
        Name {
            wire: self.wire[pos..].into(),
        }
    }

    /// A new name with `label` in front of this one.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong);
        }
        let total = 1 + label.len() + self.wire.len();
        if total > MAX_NAME {
            return Err(NameError::NameTooLong);
        }
        let mut wire = Vec::with_capacity(total);
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
        wire.extend_from_slice(&self.wire);
        Ok(Name { wire: wire.into() })
    }

    /// This name's labels followed by `suffix`.
    pub fn concat(&self, suffix: &Name) -> Result<Name, NameError> {
        let head = &self.wire[..self.wire.len() - 1];
        if head.len() + suffix.wire.len() > MAX_NAME {
            return Err(NameError::NameTooLong);
        }
        let mut wire = Vec::with_capacity(head.len() + suffix.wire.len());
        wire.extend_from_slice(head);
        wire.extend_from_slice(&suffix.wire);
        Ok(Name { wire: wire.into() })
    }

    /// The same name with ASCII letters lowercased.
    pub fn to_lowercase(&self) -> Name {
        Name {
            wire: self.wire.to_ascii_lowercase().into(),
        }
    }

    /// Lowercases in place (no allocation), consuming `self`.
    pub(crate) fn into_lowercase(mut self) -> Name {
        self.wire.make_ascii_lowercase();
        self
    }

    /// True when this name equals `other` or lies below it (ASCII case-insensitive).
    pub fn is_subdomain_of(&self, other: &Name) -> bool {
        let (mine, theirs) = (self.label_count(), other.label_count());
        mine >= theirs && self.suffix(theirs) == *other
    }

    /// Appends a byte string whose plain byte order is this name's canonical order (`Ord`):
    /// labels right to left, lowercased, each ended by 0x00; the bytes 0x00 and 0x01 inside a
    /// label become 0x01 0x01 and 0x01 0x02 so that the end of a label sorts before any byte.
    /// Sorting many names by this key (memcmp) is much cheaper than comparing them.
    pub fn canonical_key(&self, out: &mut Vec<u8>) {
        let mut a = [0u8; 128];
        let n = self.label_offsets(&mut a);
        for &offset in a[..n].iter().rev() {
            for &b in self.label_at(offset) {
                match b {
                    0 | 1 => out.extend_from_slice(&[1, b + 1]),
                    _ => out.push(b.to_ascii_lowercase()),
                }
            }
            out.push(0);
        }
    }

    /// Byte offsets of each label's length byte, left to right, excluding the root.
    fn label_offsets(&self, out: &mut [u8; 128]) -> usize {
        let (mut pos, mut n) = (0usize, 0usize);
        while self.wire[pos] != 0 {
            out[n] = pos as u8;
            n += 1;
            pos += 1 + usize::from(self.wire[pos]);
        }
        n
    }

    fn label_at(&self, offset: u8) -> &[u8] {
        let pos = usize::from(offset);
        &self.wire[pos + 1..pos + 1 + usize::from(self.wire[pos])]
    }
}

/// Length of the uncompressed name at the start of `bytes`, or `None` when malformed.
pub(crate) fn wire_name_len(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = usize::from(*bytes.get(pos)?);
        if len > MAX_LABEL {
            return None;
        }
        pos += 1 + len;
        if pos > MAX_NAME {
            return None;
        }
        if len == 0 {
            return Some(pos);
        }
    }
}

/// Appends the labels of presentation text `text` to `wire` (without the root label);
/// returns whether the text ended in an unescaped dot (absolute name).
fn encode_labels(text: &[u8], wire: &mut Vec<u8>) -> Result<bool, NameError> {
    if text.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    let mut label_start = wire.len();
    wire.push(0);
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == b'.' {
            close_label(wire, label_start)?;
            if i + 1 == text.len() {
                return Ok(true);
            }
            label_start = wire.len();
            wire.push(0);
            i += 1;
            continue;
        }
        let (byte, used) = if c == b'\\' {
            unescape_at(text, i)?
        } else {
            (c, 1)
        };
        wire.push(byte);
        i += used;
        if wire.len() - label_start - 1 > MAX_LABEL {
            return Err(NameError::LabelTooLong);
        }
    }
    close_label(wire, label_start)?;
    Ok(false)
}

fn close_label(wire: &mut [u8], start: usize) -> Result<(), NameError> {
    let len = wire.len() - start - 1;
    if len == 0 {
        return Err(NameError::EmptyLabel);
    }
    if wire.len() > MAX_NAME {
        return Err(NameError::NameTooLong);
    }
    wire[start] = len as u8;
    Ok(())
}

/// Decodes the escape starting at `text[i] == b'\\'`: returns the byte and the bytes consumed.
pub(crate) fn unescape_at(text: &[u8], i: usize) -> Result<(u8, usize), NameError> {
    let next = *text.get(i + 1).ok_or(NameError::BadEscape)?;
    if !next.is_ascii_digit() {
        return Ok((next, 2));
    }
    let digits = text.get(i + 1..i + 4).ok_or(NameError::BadEscape)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(NameError::BadEscape);
    }
    let value = digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    u8::try_from(value)
        .map(|b| (b, 4))
        .map_err(|_| NameError::BadEscape)
}

/// Writes one label in presentation format with escapes.
pub(crate) fn write_label(f: &mut impl fmt::Write, label: &[u8]) -> fmt::Result {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                f.write_char('\\')?;
                f.write_char(char::from(b))?;
            }
            0x21..=0x7e => f.write_char(char::from(b))?,
            _ => write!(f, "\\{b:03}")?,
        }
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            write_label(f, label)?;
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Lower-cased eight bytes at a time (equal names ignoring case hash alike).
        for chunk in self.wire.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            word.make_ascii_lowercase();
            state.write_u64(u64::from_le_bytes(word));
        }
    }
}

impl Ord for Name {
    /// DNSSEC canonical order (RFC 4034 §6.1).
    fn cmp(&self, other: &Name) -> Ordering {
        // The end of every successful map lookup, and cheap to rule out.
        if self.wire.eq_ignore_ascii_case(&other.wire) {
            return Ordering::Equal;
        }
        let (mut a, mut b) = ([0u8; 128], [0u8; 128]);
        let (na, nb) = (self.label_offsets(&mut a), other.label_offsets(&mut b));
        for k in 1..=na.min(nb) {
            let la = self.label_at(a[na - k]);
            let lb = other.label_at(b[nb - k]);
            if la.eq_ignore_ascii_case(lb) {
                continue;
            }
            return la
                .iter()
                .map(u8::to_ascii_lowercase)
                .cmp(lb.iter().map(u8::to_ascii_lowercase));
        }
        na.cmp(&nb)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn parse_absolute_and_relative() {
        let origin = n("example.com.");
        assert_eq!(
            n("www.example.com.").wire(),
            b"\x03www\x07example\x03com\x00"
        );
        let rel = Name::parse("www", Some(&origin)).unwrap();
        assert_eq!(rel, n("WWW.Example.COM."));
        assert_eq!(Name::parse("@", Some(&origin)).unwrap(), origin);
        assert!(n(".").is_root());
        assert_eq!(Name::parse("www", None), Err(NameError::NoOrigin));
    }

    #[test]
    fn canonical_key_orders_as_cmp() {
        let names = r"
            . a. A. b. a.b. z.a. a\000. a\001. a\000b. a\002. \000. \001. \001\000. ab. ab.a.
            b.ab. yljkjljk.a. Z.a. zABC.a. *.z.a. \200.z.a. \255. a.a\000.";
        let names: Vec<Name> = names.split_whitespace().map(n).collect();
        let key = |x: &Name| {
            let mut k = Vec::new();
            x.canonical_key(&mut k);
            k
        };
        for a in &names {
            for b in &names {
                assert_eq!(key(a).cmp(&key(b)), a.cmp(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn escapes() {
        let name = n("a\\.b\\065\\\\.c.");
        assert_eq!(name.wire(), b"\x05a.bA\\\x01c\x00");
        assert_eq!(name.to_string(), "a\\.bA\\\\.c.");
        assert_eq!(n("\\000\\255.").to_string(), "\\000\\255.");
        assert_eq!(Name::parse("a\\256.", None), Err(NameError::BadEscape));
        assert_eq!(Name::parse("a\\", None), Err(NameError::BadEscape));
        assert_eq!(Name::parse("a\\12", None), Err(NameError::BadEscape));
        assert_eq!(format!("{:?}", n("x\\ y.")), "\"x\\032y.\"");
    }

    #[test]
    fn limits() {
        let long = "a".repeat(64);
        assert_eq!(Name::parse(&long, None), Err(NameError::LabelTooLong));
        let ok = format!("{}.", "a".repeat(63));
        assert!(Name::parse(&ok, None).is_ok());
        let too_long = format!("{}.", vec!["a".repeat(63); 4].join("."));
        assert_eq!(Name::parse(&too_long, None), Err(NameError::NameTooLong));
        assert_eq!(Name::parse("a..b.", None), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse(".a.", None), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse("", None), Err(NameError::EmptyLabel));
    }

    #[test]
    fn wire_roundtrip() {
        assert_eq!(Name::from_wire(b"\x01a\x00").unwrap(), n("a."));
        assert!(Name::from_wire(b"\x01a").is_err());
        assert!(Name::from_wire(b"\xc0\x0c").is_err());
        assert!(Name::from_wire(b"\x00\x00").is_err());
    }

    #[test]
    fn structure() {
        let name = n("*.b.c.");
        assert!(name.is_wildcard());
        assert_eq!(name.label_count(), 3);
        assert_eq!(name.labels().collect::<Vec<_>>(), [b"*", b"b", b"c"]);
        assert_eq!(name.parent().unwrap(), n("b.c."));
        assert_eq!(name.suffix(1), n("c."));
        assert_eq!(name.suffix(0), Name::root());
        assert_eq!(n("c.").prepend(b"x").unwrap(), n("x.c."));
        assert_eq!(n("a.b.").concat(&n("c.")).unwrap(), n("a.b.c."));
        assert!(Name::root().parent().is_none());
        assert!(n("A.B.c.").is_subdomain_of(&n("b.C.")));
        assert!(!n("b.c.").is_subdomain_of(&n("a.b.c.")));
        assert!(n("x.").is_subdomain_of(&Name::root()));
        assert_eq!(n("AbC.").to_lowercase().wire(), b"\x03abc\x00");
    }

    #[test]
    fn canonical_order() {
        // RFC 4034 §6.1 example.
        let sorted = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let names: Vec<Name> = sorted.iter().map(|s| n(s)).collect();
        for pair in names.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(n("A.").cmp(&n("a.")), Ordering::Equal);
    }
}
