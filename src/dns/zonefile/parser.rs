//! Master-file driver: directives, record headers (owner, TTL, class, type) and `$INCLUDE`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{Entry, Lexer, Token};
use super::rdata::{self, Cursor, parse_ttl};
use super::types::{self, Form};
use super::{PErr, Record, Source, ZoneFileError};
use crate::dns::name::Name;

/// knotd's `default-ttl` (used until a `$TTL` directive appears).
const DEFAULT_TTL: u32 = 3600;
/// Deepest `$INCLUDE` nesting accepted (also stops include loops).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Most records one `$GENERATE` may make (a /16 of reverse records), so that a typo in a
/// range cannot exhaust memory.
const MAX_GENERATE: u32 = 65536;
/// Class IN, the only class served.
const CLASS_IN: u16 = 1;

/// Parses a whole zone (including `$INCLUDE`d files); no zone-level checks.
pub(crate) fn parse(text: &[u8], path: &Path, zone: &Name) -> Result<Vec<Record>, ZoneFileError> {
    let mut p = Parser {
        zone: zone.clone(),
        origin: zone.clone(),
        last_owner: None,
        default_ttl: DEFAULT_TTL,
        last_class: CLASS_IN,
        depth: 0,
        file: Arc::from(path),
        out: Vec::new(),
    };
    p.parse_file(text, path, 1)?;
    Ok(p.out)
}

struct Parser {
    zone: Name,
    origin: Name,
    last_owner: Option<Name>,
    default_ttl: u32,
    last_class: u16,
    depth: usize,
    file: Arc<Path>,
    out: Vec<Record>,
}

impl Parser {
    fn parse_file(
        &mut self,
        text: &[u8],
        path: &Path,
        first_line: u32,
    ) -> Result<(), ZoneFileError> {
        let prev = std::mem::replace(&mut self.file, Arc::from(path));
        let res = self.parse_entries(Lexer::with_line(text, first_line));
        self.file = prev;
        res
    }

    fn parse_entries(&mut self, mut lexer: Lexer<'_>) -> Result<(), ZoneFileError> {
        let mut toks = Vec::with_capacity(16);
        loop {
            let entry = match lexer.next_entry(&mut toks) {
                Ok(Some(entry)) => entry,
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.in_file(&self.file)),
            };
            let first = lexer.bytes(&toks[0]);
            if !entry.leading_ws && !toks[0].quoted && first.starts_with(b"$") {
                self.directive(lexer.text(), &toks, entry)?;
            } else {
                self.record(lexer.text(), &toks, entry)
                    .map_err(|e| e.in_file(&self.file))?;
            }
        }
    }

    fn directive(
        &mut self,
        text: &[u8],
        toks: &[Token],
        entry: Entry,
    ) -> Result<(), ZoneFileError> {
        let mut cur = Cursor::new(text, toks, entry.line);
        let name = cur.expect("directive").map_err(|e| e.in_file(&self.file))?;
        let res = match name.to_ascii_uppercase().as_slice() {
            b"$ORIGIN" => self.set_origin(&mut cur),
            b"$TTL" => self.set_ttl(&mut cur),
            b"$INCLUDE" => return self.include(&mut cur, entry.line),
            b"$GENERATE" => return self.generate(&mut cur, entry.line),
            _ => Err(cur.err(format!(
                "unknown directive '{}'",
                String::from_utf8_lossy(name)
            ))),
        };
        res.map_err(|e| e.in_file(&self.file))
    }

    fn set_origin(&mut self, cur: &mut Cursor<'_>) -> Result<(), PErr> {
        let arg = cur.expect("$ORIGIN name")?;
        self.origin = Name::parse_bytes(arg, Some(&self.origin))
            .map_err(|e| cur.err(format!("invalid $ORIGIN: {e}")))?;
        no_more(cur)
    }

    fn set_ttl(&mut self, cur: &mut Cursor<'_>) -> Result<(), PErr> {
        let arg = cur.expect("$TTL value")?;
        self.default_ttl = parse_ttl(arg).map_err(|e| cur.err(format!("invalid $TTL: {e}")))?;
        no_more(cur)
    }

    fn include(&mut self, cur: &mut Cursor<'_>, line: u32) -> Result<(), ZoneFileError> {
        let here = self.file.clone();
        let err = |m: String| PErr::new(line, m).in_file(&here);
        let (path, origin) = self.include_args(cur).map_err(|e| e.in_file(&here))?;
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(err("$INCLUDE nested too deeply (include loop?)".into()));
        }
        let text = std::fs::read(&path)
            .map_err(|e| err(format!("cannot read $INCLUDE file {}: {e}", path.display())))?;
        let saved = std::mem::replace(&mut self.origin, origin);
        self.depth += 1;
        let res = self.parse_file(&text, &path, 1);
        self.depth -= 1;
        self.origin = saved;
        res
    }

    fn include_args(&self, cur: &mut Cursor<'_>) -> Result<(PathBuf, Name), PErr> {
        let mut file = Vec::new();
        rdata::unescape(cur.expect("$INCLUDE file name")?, &mut file).map_err(|e| cur.err(e))?;
        let file =
            PathBuf::from(String::from_utf8(file).map_err(|_| cur.err("invalid file name"))?);
        let path = match self.file.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        };
        let origin = match cur.next_tok() {
            Some((b, _)) => Name::parse_bytes(b, Some(&self.origin))
                .map_err(|e| cur.err(format!("invalid $INCLUDE origin: {e}")))?,
            None => self.origin.clone(),
        };
        no_more(cur)?;
        Ok((path, origin))
    }

    /// `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs` (BIND extension).
    fn generate(&mut self, cur: &mut Cursor<'_>, line: u32) -> Result<(), ZoneFileError> {
        let here = self.file.clone();
        let (range, lhs, middle, rhs) = generate_args(cur).map_err(|e| e.in_file(&here))?;
        let count = u64::from(range.1 - range.0) / u64::from(range.2) + 1;
        if count > u64::from(MAX_GENERATE) {
            let msg = format!("$GENERATE makes {count} records, more than {MAX_GENERATE}");
            return Err(PErr::new(line, msg).in_file(&here));
        }
        let mut i = range.0;
        loop {
            let mut text = String::new();
            let parts = substitute(lhs, i, &mut text).and_then(|()| {
                text.push(' ');
                text.push_str(&middle);
                text.push(' ');
                substitute(rhs, i, &mut text)
            });
            parts.map_err(|m| PErr::new(line, m).in_file(&here))?;
            self.parse_entries(Lexer::with_line(text.as_bytes(), line))?;
            // The range may end at u32::MAX: stop before the counter overflows.
            match i.checked_add(range.2) {
                Some(next) if next <= range.1 => i = next,
                _ => return Ok(()),
            }
        }
    }

    fn record(&mut self, text: &[u8], toks: &[Token], entry: Entry) -> Result<(), PErr> {
        let mut cur = Cursor::new(text, toks, entry.line);
        let owner = if entry.leading_ws {
            self.last_owner
                .clone()
                .ok_or_else(|| cur.err("no previous owner name"))?
        } else {
            let b = cur.expect("owner")?;
            let owner = Name::parse_bytes(b, Some(&self.origin))
                .map_err(|e| cur.err(format!("invalid owner name: {e}")))?
                .into_lowercase();
            self.last_owner = Some(owner.clone());
            owner
        };
        let (ttl, class, rtype) = self.header(&mut cur)?;
        if matches!(types::form_of(rtype), Form::Forbidden) {
            return Err(cur.err(format!(
                "record type {} not allowed in a zone",
                types::type_to_string(rtype)
            )));
        }
        let mut rdata = Vec::new();
        rdata::parse_rdata(rtype, &mut cur, &self.origin, &mut rdata)?;
        if class != CLASS_IN {
            return Err(PErr::new(
                entry.line,
                format!("class {class} is not supported (only IN)"),
            ));
        }
        // Out-of-zone data is dropped, like knotd ("ignoring out-of-zone data").
        if !owner.is_subdomain_of(&self.zone) {
            return Ok(());
        }
        let source = Source {
            file: self.file.clone(),
            line: entry.line,
        };
        let ttl = ttl.unwrap_or(self.default_ttl);
        self.out.push(Record {
            owner,
            rtype,
            class,
            ttl,
            rdata,
            source,
        });
        Ok(())
    }

    /// TTL and class in either order (both optional), then the type.
    fn header(&mut self, cur: &mut Cursor<'_>) -> Result<(Option<u32>, u16, u16), PErr> {
        let (mut ttl, mut class) = (None, None);
        loop {
            let b = cur.expect("RR type")?;
            if let (None, Some(c)) = (class, types::class_from_bytes(b)) {
                class = Some(c);
                continue;
            }
            if ttl.is_none() && b.first().is_some_and(u8::is_ascii_digit) {
                ttl = Some(parse_ttl(b).map_err(|e| cur.err(e))?);
                continue;
            }
            let rtype = types::type_from_bytes(b).ok_or_else(|| {
                cur.err(format!("unknown RR type '{}'", String::from_utf8_lossy(b)))
            })?;
            let class = class.unwrap_or(self.last_class);
            self.last_class = class;
            return Ok((ttl, class, rtype));
        }
    }
}

fn no_more(cur: &mut Cursor<'_>) -> Result<(), PErr> {
    match cur.next_tok() {
        Some(_) => Err(cur.err("unexpected extra argument")),
        None => Ok(()),
    }
}

type GenerateArgs<'a> = ((u32, u32, u32), &'a [u8], String, &'a [u8]);

fn generate_args<'a>(cur: &mut Cursor<'a>) -> Result<GenerateArgs<'a>, PErr> {
    let range = cur.expect("$GENERATE range")?;
    let range = parse_range(range).ok_or_else(|| cur.err("invalid $GENERATE range"))?;
    let lhs = cur.expect("$GENERATE owner")?;
    let mut rest = Vec::new();
    while let Some((b, _)) = cur.next_tok() {
        rest.push(b);
    }
    let rhs = rest
        .pop()
        .ok_or_else(|| cur.err("missing $GENERATE type and rdata"))?;
    if rest.is_empty() {
        return Err(cur.err("missing $GENERATE type"));
    }
    let middle: Vec<String> = rest
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    Ok((range, lhs, middle.join(" "), rhs))
}

fn parse_range(b: &[u8]) -> Option<(u32, u32, u32)> {
    let (range, step) = match b.iter().position(|&c| c == b'/') {
        Some(p) => (&b[..p], types::parse_decimal(&b[p + 1..])?),
        None => (b, 1),
    };
    let dash = range.iter().position(|&c| c == b'-')?;
    let start = types::parse_decimal(&range[..dash])?;
    let stop = types::parse_decimal(&range[dash + 1..])?;
    let ok =
        start <= stop && stop <= u64::from(u32::MAX) && step >= 1 && step <= u64::from(u32::MAX);
    ok.then_some((start as u32, stop as u32, step as u32))
}

/// Replaces `$` and `${offset,width,base}` with the iterator value; `\$` is a literal `$`.
fn substitute(template: &[u8], i: u32, out: &mut String) -> Result<(), String> {
    let mut k = 0;
    while k < template.len() {
        match template[k] {
            b'\\' if template.get(k + 1) == Some(&b'$') => {
                out.push('$');
                k += 2;
            }
            b'$' if template.get(k + 1) == Some(&b'{') => {
                let close = template[k..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unclosed ${ in $GENERATE")?;
                modifier(&template[k + 2..k + close], i, out)?;
                k += close + 1;
            }
            b'$' => {
                let _ = write!(out, "{i}");
                k += 1;
            }
            c => {
                out.push(char::from(c));
                k += 1;
            }
        }
    }
    Ok(())
}

fn modifier(spec: &[u8], i: u32, out: &mut String) -> Result<(), String> {
    let bad = || "invalid $GENERATE modifier".to_string();
    let s = std::str::from_utf8(spec).map_err(|_| bad())?;
    let mut parts = s.split(',');
    let offset: i64 = parts.next().unwrap_or("0").parse().map_err(|_| bad())?;
    let width: usize = parts.next().map_or(Ok(0), str::parse).map_err(|_| bad())?;
    let base = parts.next().unwrap_or("d");
    if parts.next().is_some() {
        return Err(bad());
    }
    let v = i64::from(i) + offset;
    if v < 0 {
        return Err("$GENERATE value out of range".into());
    }
    let _ = match base {
        "d" => write!(out, "{v:0width$}"),
        "o" => write!(out, "{v:0width$o}"),
        "x" => write!(out, "{v:0width$x}"),
        "X" => write!(out, "{v:0width$X}"),
        "n" | "N" => {
            let hex = format!("{v:0width$x}");
            let nibbles: Vec<String> = hex
                .chars()
                .rev()
                .map(|c| {
                    if base == "N" {
                        c.to_ascii_uppercase().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            write!(out, "{}", nibbles.join("."))
        }
        _ => return Err(bad()),
    };
    Ok(())
}
