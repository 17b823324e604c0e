//! Where a chunked body ends (RFC 9112 §7.1), for passing one on unchanged: the bytes are
//! only followed, never rewritten.

/// Longest chunk-size or trailer line followed.
const MAX_LINE: usize = 8 * 1024;

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    state: State,
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, whether a digit was seen, whether past them.
    Size {
        size: u64,
        digits: bool,
        past: bool,
    },
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// In the trailer section: whether the current line is still empty.
    Trailer {
        empty: bool,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// A body that is not valid chunked coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

impl Default for Chunks {
    fn default() -> Chunks {
        Chunks {
            state: State::Size {
                size: 0,
                digits: false,
                past: false,
            },
            line: 0,
        }
    }
}

impl Chunks {
    /// Follows `input`; `Some(n)` when the body ends after its first `n` bytes.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<usize>, Invalid> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data(left) = self.state {
                let take = left.min((input.len() - i) as u64);
                i += take as usize;
                self.state = if take == left {
                    State::DataCr
                } else {
                    State::Data(left - take)
                };
                continue;
            }
            let b = input[i];
            i += 1;
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(Invalid);
            }
            self.state = match (self.state, b) {
                (
                    State::Size {
                        size, digits: true, ..
                    },
                    b'\r',
                ) => State::SizeLf { size },
                (
                    State::Size {
                        size, past: false, ..
                    },
                    b,
                ) if b.is_ascii_hexdigit() => {
                    let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                    let size = size.checked_mul(16).and_then(|s| s.checked_add(digit));
                    State::Size {
                        size: size.ok_or(Invalid)?,
                        digits: true,
                        past: false,
                    }
                }
                // Whitespace before, and extensions after a `;` (ignored).
                (State::Size { size, digits, .. }, b)
                    if digits && (b == b';' || b == b' ' || b == b'\t') =>
                {
                    State::Size {
                        size,
                        digits,
                        past: true,
                    }
                }
                (s @ State::Size { past: true, .. }, b) if b != b'\n' => s,
                (State::SizeLf { size }, b'\n') => {
                    self.line = 0;
                    if size == 0 {
                        State::Trailer { empty: true }
                    } else {
                        State::Data(size)
                    }
                }
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => {
                    self.line = 0;
                    State::Size {
                        size: 0,
                        digits: false,
                        past: false,
                    }
                }
                (State::Trailer { empty }, b'\r') => State::TrailerLf { empty },
                (State::Trailer { .. }, b) if b != b'\n' => State::Trailer { empty: false },
                (State::TrailerLf { empty: true }, b'\n') => {
                    self.state = State::Done;
                    return Ok(Some(i));
                }
                (State::TrailerLf { empty: false }, b'\n') => {
                    self.line = 0;
                    State::Trailer { empty: true }
                }
                _ => return Err(Invalid),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the body ends when fed `step` bytes at a time.
    fn end(body: &[u8], step: usize) -> Result<Option<usize>, Invalid> {
        let mut c = Chunks::default();
        let mut at = 0;
        for piece in body.chunks(step) {
            if let Some(n) = c.feed(piece)? {
                return Ok(Some(at + n));
            }
            at += piece.len();
        }
        Ok(None)
    }

    #[test]
    fn the_end_is_found_whatever_the_pieces() {
        let body = b"5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            assert_eq!(end(body, step), Ok(Some(body.len() - 4)), "step {step}");
        }
        assert_eq!(end(b"0\r\n\r\n", 100), Ok(Some(5)));
        assert_eq!(end(b"5\r\nhel", 100), Ok(None));
    }

    #[test]
    fn broken_coding_is_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloX\r\n",
            b"\r\n",
            b"5\n",
            b"fffffffffffffffff\r\n",
        ] {
            assert_eq!(
                end(bad, 100),
                Err(Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(end(&[b'1'; MAX_LINE + 1], 100), Err(Invalid));
    }
}
