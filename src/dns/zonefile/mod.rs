//! RFC 1035 master-file (zone file) parser producing wire-format records.
//!
//! Supports `$ORIGIN`, `$TTL` (RFC 2308, BIND time units), `$INCLUDE`, the BIND `$GENERATE`
//! extension, RFC 3597 generic RDATA (`\# len hex`, `TYPEnnn`, `CLASSnnn`) and the text forms
//! of the RR types knotd understands plus a few older ones. After parsing, zone-level checks
//! run (see `checks.rs`). Records whose owner is outside the zone are dropped, as knotd does
//! ("ignoring out-of-zone data").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dns::name::{Name, wire_name_len};

mod checks;
mod codec;
mod lexer;
mod loc;
mod parser;
mod rdata;
mod special;
mod svcb;
mod text;
mod types;

pub use types::{type_from_str, type_to_string};

/// Where a record came from, for `file:line: what` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// File the record was read from (the included file for `$INCLUDE`d records).
    pub file: Arc<Path>,
    /// Line on which the record starts.
    pub line: u32,
}

/// One resource record with wire-format RDATA (uncompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, case preserved.
    pub owner: Name,
    /// RR type number.
    pub rtype: u16,
    /// RR class number.
    pub class: u16,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Uncompressed wire-format RDATA.
    pub rdata: Vec<u8>,
    /// Where the record was defined.
    pub source: Source,
}

/// `file:line: message`
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ZoneFileError {
    /// File containing the problem.
    pub file: PathBuf,
    /// Line of the problem (1-based).
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// A parse error before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PErr {
    pub line: u32,
    pub msg: String,
}

impl PErr {
    pub(crate) fn new(line: u32, msg: impl Into<String>) -> PErr {
        PErr {
            line,
            msg: msg.into(),
        }
    }

    pub(crate) fn in_file(self, file: &Path) -> ZoneFileError {
        ZoneFileError {
            file: file.to_path_buf(),
            line: self.line,
            message: self.msg,
        }
    }
}

/// Read and parse a zone file (follows $INCLUDE relative to the including file's directory), then run the zone-level checks.
pub fn load_zone_file(path: &Path, origin: &Name) -> Result<Vec<Record>, ZoneFileError> {
    let text = std::fs::read(path).map_err(|e| ZoneFileError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read zone file: {e}"),
    })?;
    parse_bytes(&text, path, origin)
}

/// Parse zone text; `path` names it in errors and is the base for relative $INCLUDE. Runs the zone-level checks too.
pub fn parse_zone_text(
    text: &str,
    path: &Path,
    origin: &Name,
) -> Result<Vec<Record>, ZoneFileError> {
    parse_bytes(text.as_bytes(), path, origin)
}

/// Parse zone bytes exactly as [`load_zone_file`] does after reading the file (zone files
/// need not be UTF-8); `path` names it in errors and is the base for relative `$INCLUDE`.
pub fn parse_zone_bytes(
    text: &[u8],
    path: &Path,
    origin: &Name,
) -> Result<Vec<Record>, ZoneFileError> {
    parse_bytes(text, path, origin)
}

fn parse_bytes(text: &[u8], path: &Path, origin: &Name) -> Result<Vec<Record>, ZoneFileError> {
    let mut records = parser::parse(text, path, origin)?;
    checks::check_zone(&mut records, origin, path)?;
    Ok(records)
}

/// Offsets of compressible names inside an RDATA; derefs to `&[usize]` (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameOffsets {
    buf: [usize; 2],
    len: usize,
}

impl NameOffsets {
    fn push(&mut self, off: usize) {
        self.buf[self.len] = off;
        self.len += 1;
    }
}

impl std::ops::Deref for NameOffsets {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.buf[..self.len]
    }
}

impl<'a> IntoIterator for &'a NameOffsets {
    type Item = &'a usize;
    type IntoIter = std::slice::Iter<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Offsets (into `rdata`) of domain names that may be compressed on output: only the RFC 1035
/// types (NS, MD, MF, CNAME, SOA (both names), MB, MG, MR, PTR, MINFO (both), MX exchange).
/// Empty for other types and for malformed RDATA.
pub fn compressible_names(rtype: u16, rdata: &[u8]) -> NameOffsets {
    let mut out = NameOffsets::default();
    match rtype {
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => out.push(0),
        6 | 14 => {
            if let Some(first) = wire_name_len(rdata) {
                out.push(0);
                out.push(first);
            }
        }
        15 if rdata.len() > 2 => out.push(2),
        _ => {}
    }
    out
}

/// Target names for additional-section processing: NS nsdname, MX exchange, SRV target and
/// SVCB/HTTPS target, the types knotd adds records for. `None` for other types or bad RDATA.
pub fn additional_target(rtype: u16, rdata: &[u8]) -> Option<Name> {
    let offset = match rtype {
        2 => 0,
        15 | 64 | 65 => 2,
        33 => 6,
        _ => return None,
    };
    let tail = rdata.get(offset..)?;
    let len = wire_name_len(tail)?;
    Name::from_wire(&tail[..len]).ok()
}

/// Presentation text of an RDATA (for logs / tests); RFC 3597 `\# len hex` for types without a text form.
pub fn rdata_to_text(rtype: u16, rdata: &[u8]) -> String {
    text::rdata_to_text(rtype, rdata)
}

#[cfg(test)]
mod tests;
