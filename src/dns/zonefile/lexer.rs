//! Tokenizer for master files: splits text into entries (one record or directive each).
//!
//! Handles whitespace, `;` comments, `( ... )` grouping across lines, quoted strings and
//! backslash escapes. Tokens keep their raw bytes; escapes are decoded by the consumer.

use super::PErr;

/// One token: a byte range of the source text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    /// Start of the raw bytes (after the opening quote for quoted strings).
    pub start: usize,
    /// End of the raw bytes (before the closing quote).
    pub end: usize,
    /// Line the token is on.
    pub line: u32,
    /// Was the token a `"quoted string"`?
    pub quoted: bool,
    /// True when no whitespace separates this token from the previous one.
    pub joined: bool,
}

/// One logical line (record or directive).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// Line the entry starts on.
    pub line: u32,
    /// Did the entry's first line start with whitespace (owner omitted)?
    pub leading_ws: bool,
}

/// Streaming tokenizer over one file's text.
pub(crate) struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: u32,
}

fn is_delim(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"')
}

/// Bytes that may not appear raw in a token (knot rejects them too).
fn is_bad_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b >= 0x7f
}

impl<'a> Lexer<'a> {
    /// A lexer positioned at the start of `text`.
    #[cfg(test)]
    pub fn new(text: &'a [u8]) -> Lexer<'a> {
        Lexer::with_line(text, 1)
    }

    /// A lexer whose first line is numbered `line`.
    pub fn with_line(text: &'a [u8], line: u32) -> Lexer<'a> {
        Lexer { text, pos: 0, line }
    }

    /// The whole input text.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The raw bytes of a token.
    pub fn bytes(&self, tok: &Token) -> &'a [u8] {
        &self.text[tok.start..tok.end]
    }

    /// Reads the next non-empty entry into `toks`; `None` at end of input.
    pub fn next_entry(&mut self, toks: &mut Vec<Token>) -> Result<Option<Entry>, PErr> {
        loop {
            toks.clear();
            if self.pos >= self.text.len() {
                return Ok(None);
            }
            let entry = Entry {
                line: self.line,
                leading_ws: matches!(self.text[self.pos], b' ' | b'\t'),
            };
            self.read_logical_line(toks, entry.line)?;
            if !toks.is_empty() {
                return Ok(Some(entry));
            }
        }
    }

    /// Consumes one logical line (up to a newline outside parentheses).
    fn read_logical_line(&mut self, toks: &mut Vec<Token>, start_line: u32) -> Result<(), PErr> {
        let mut depth = 0u32;
        let mut joined = false;
        while self.pos < self.text.len() {
            let b = self.text[self.pos];
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    joined = false;
                    if depth == 0 {
                        return Ok(());
                    }
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    self.pos += 1;
                    joined = false;
                    continue;
                }
                b';' => self.skip_comment(),
                b'(' => {
                    if depth > 0 {
                        return Err(PErr::new(self.line, "nested parentheses"));
                    }
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    if depth == 0 {
                        return Err(PErr::new(self.line, "closing parenthesis without opening"));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b'"' => toks.push(self.quoted(joined)?),
                _ => toks.push(self.word(joined)?),
            }
            joined = !matches!(b, b';' | b'(' | b')');
        }
        if depth > 0 {
            return Err(PErr::new(start_line, "unclosed parenthesis"));
        }
        Ok(())
    }

    fn skip_comment(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn quoted(&mut self, joined: bool) -> Result<Token, PErr> {
        let line = self.line;
        self.pos += 1;
        let start = self.pos;
        loop {
            let Some(&b) = self.text.get(self.pos) else {
                return Err(PErr::new(line, "unterminated quoted string"));
            };
            match b {
                b'"' => break,
                b'\\' => self.escape()?,
                b'\n' | b'\r' => {
                    // knotd keeps line breaks inside quoted strings.
                    self.line += u32::from(b == b'\n');
                    self.pos += 1;
                }
                _ if is_bad_byte(b) => return Err(self.bad_byte(b)),
                _ => self.pos += 1,
            }
        }
        let end = self.pos;
        self.pos += 1;
        Ok(Token {
            start,
            end,
            line,
            quoted: true,
            joined,
        })
    }

    fn word(&mut self, joined: bool) -> Result<Token, PErr> {
        let start = self.pos;
        while let Some(&b) = self.text.get(self.pos) {
            if b == b'\\' {
                self.escape()?;
            } else if is_delim(b) {
                break;
            } else if is_bad_byte(b) {
                return Err(self.bad_byte(b));
            } else {
                self.pos += 1;
            }
        }
        Ok(Token {
            start,
            end: self.pos,
            line: self.line,
            quoted: false,
            joined,
        })
    }

    /// Skips a backslash and the byte it escapes (digits are ordinary token bytes).
    fn escape(&mut self) -> Result<(), PErr> {
        match self.text.get(self.pos + 1) {
            None | Some(b'\n') => Err(PErr::new(self.line, "backslash at end of line")),
            Some(&b) if is_bad_byte(b) => Err(self.bad_byte(b)),
            Some(_) => {
                self.pos += 2;
                Ok(())
            }
        }
    }

    fn bad_byte(&self, b: u8) -> PErr {
        PErr::new(
            self.line,
            format!("invalid character \\{b:03} (use a \\DDD escape)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Vec<(u32, bool, Vec<String>)> {
        let mut lx = Lexer::new(text.as_bytes());
        let mut toks = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry(&mut toks).unwrap() {
            let words = toks
                .iter()
                .map(|t| String::from_utf8_lossy(lx.bytes(t)).into_owned())
                .collect();
            out.push((e.line, e.leading_ws, words));
        }
        out
    }

    #[test]
    fn entries_and_comments() {
        let got = lex("a 1 A 1.2.3.4 ; c\n\n ; only comment\n  TXT \"x y\" z\n");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (
                1,
                false,
                vec!["a", "1", "A", "1.2.3.4"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        assert_eq!(got[1].0, 4);
        assert!(got[1].1);
        assert_eq!(got[1].2, ["TXT", "x y", "z"]);
    }

    #[test]
    fn parentheses_span_lines() {
        let got = lex("@ SOA a b (\n 1 ; serial\n 2 3 4 5 )\nx A 1.1.1.1");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].2.len(), 9);
        assert_eq!(got[1].0, 4);
    }

    #[test]
    fn escapes_and_joined() {
        let mut lx = Lexer::new(b"a\\ b\\;c key=\"v w\" \"q\\\"x\"");
        let mut toks = Vec::new();
        lx.next_entry(&mut toks).unwrap();
        assert_eq!(lx.bytes(&toks[0]), b"a\\ b\\;c");
        assert_eq!(lx.bytes(&toks[1]), b"key=");
        assert!(toks[2].quoted && toks[2].joined);
        assert_eq!(lx.bytes(&toks[3]), b"q\\\"x");
        assert!(!toks[3].joined);
    }

    #[test]
    fn errors_have_lines() {
        let mut toks = Vec::new();
        let err = Lexer::new(b"a A (\n1\n").next_entry(&mut toks).unwrap_err();
        assert_eq!(err.line, 1);
        let err = Lexer::new(b"ok\nb TXT \"x\nmore\"").next_entry(&mut toks);
        assert!(err.is_ok());
        let mut lx = Lexer::new(b"ok\nb A 1\x002\n");
        lx.next_entry(&mut toks).unwrap();
        assert_eq!(lx.next_entry(&mut toks).unwrap_err().line, 2);
        assert!(Lexer::new(b"a NS ((a))").next_entry(&mut toks).is_err());
        assert!(Lexer::new(b"a TXT x\\").next_entry(&mut toks).is_err());
    }
}
