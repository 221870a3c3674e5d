//! JSON string escaping exactly as Docker's Go code produces it.
//!
//! Two flavours exist in Docker and both are needed for byte-identical files:
//! the hand-written `ffjsonWriteJSONBytesAsString` in `jsonlog/jsonlogbytes.go`
//! (used for the `log` and `stream` fields) and Go's `encoding/json` (used for
//! the pre-marshalled `attrs` object). They differ only in that `encoding/json`
//! uses the short forms `\b \f \t` where the jsonlog encoder writes `\u00XX`.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `SAFE[b]` is true for bytes copied verbatim: printable ASCII except the
/// characters JSON or Docker's HTML-safe encoding escape. Bytes >= 0x80 are not
/// "safe" because they need UTF-8 validation (Go replaces invalid bytes).
static SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x80 {
        t[b] = !matches!(b as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        b += 1;
    }
    t
};

/// Length of the valid UTF-8 sequence starting at `s[0]` (a byte >= 0x80), or
/// `None` when Go's `utf8.DecodeRune` would return `(RuneError, 1)`.
#[inline]
fn utf8_len(s: &[u8]) -> Option<usize> {
    let cont = |i: usize| s.get(i).is_some_and(|&c| (0x80..=0xBF).contains(&c));
    let in_range = |i: usize, lo: u8, hi: u8| s.get(i).is_some_and(|&c| (lo..=hi).contains(&c));
    match s[0] {
        0xC2..=0xDF if cont(1) => Some(2),
        0xE0 if in_range(1, 0xA0, 0xBF) && cont(2) => Some(3),
        0xE1..=0xEC | 0xEE..=0xEF if cont(1) && cont(2) => Some(3),
        // 0xED 0xA0..: UTF-16 surrogates, invalid in UTF-8.
        0xED if in_range(1, 0x80, 0x9F) && cont(2) => Some(3),
        0xF0 if in_range(1, 0x90, 0xBF) && cont(2) && cont(3) => Some(4),
        0xF1..=0xF3 if cont(1) && cont(2) && cont(3) => Some(4),
        0xF4 if in_range(1, 0x80, 0x8F) && cont(2) && cont(3) => Some(4),
        _ => None,
    }
}

/// Appends `s` escaped like Docker's jsonlog encoder, without surrounding quotes.
///
/// `<`, `>`, `&` become `\u003c \u003e \u0026`, `\n`/`\r` use short forms, other
/// control bytes `\u00XX`, invalid UTF-8 bytes `\ufffd` (one per byte, as Go's
/// `utf8.DecodeRune` reports), and U+2028/U+2029 `\u2028`/`\u2029`.
#[inline]
pub fn escape_jsonlog(s: &[u8], out: &mut Vec<u8>) {
    escape(s, out, false)
}

/// Appends `s` escaped like Go's `encoding/json` (HTML escaping on), without quotes.
pub fn escape_go_json(s: &[u8], out: &mut Vec<u8>) {
    escape(s, out, true)
}

#[inline]
fn escape(s: &[u8], out: &mut Vec<u8>, go_std: bool) {
    // Most log text needs no escaping beyond the newline we add ourselves, so
    // reserve once and copy runs of safe bytes with a single memcpy each.
    out.reserve(s.len() + 8);
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if SAFE[b as usize] {
            i += 1;
            continue;
        }
        if b < 0x80 {
            out.extend_from_slice(&s[start..i]);
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' if go_std => out.extend_from_slice(b"\\t"),
                0x08 if go_std => out.extend_from_slice(b"\\b"),
                0x0C if go_std => out.extend_from_slice(b"\\f"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xF) as usize],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        match utf8_len(&s[i..]) {
            None => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                start = i;
            }
            Some(3)
                if s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9) =>
            {
                // JSON allows these raw, but JavaScript does not; Go escapes them.
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(if s[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                start = i;
            }
            Some(n) => i += n,
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// Error from [`unescape`]: the input is not a valid JSON string body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape;

/// Decodes a JSON string body (the bytes between the quotes) into `out`.
///
/// Lone surrogates decode to U+FFFD, as Go's decoder does.
pub fn unescape(s: &[u8], out: &mut Vec<u8>) -> Result<(), BadEscape> {
    out.reserve(s.len());
    let mut rest = s;
    while let Some(p) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..p]);
        let esc = *rest.get(p + 1).ok_or(BadEscape)?;
        rest = &rest[p + 2..];
        let c = match esc {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(rest)?;
                rest = &rest[4..];
                if (0xD800..0xDC00).contains(&cp) {
                    // A high surrogate must be followed by an escaped low one.
                    if rest.len() >= 6 && rest[0] == b'\\' && rest[1] == b'u' {
                        let lo = hex4(&rest[2..])?;
                        if (0xDC00..0xE000).contains(&lo) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            rest = &rest[6..];
                        } else {
                            cp = 0xFFFD;
                        }
                    } else {
                        cp = 0xFFFD;
                    }
                } else if (0xDC00..0xE000).contains(&cp) {
                    cp = 0xFFFD;
                }
                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                continue;
            }
            _ => return Err(BadEscape),
        };
        out.push(c);
    }
    out.extend_from_slice(rest);
    Ok(())
}

fn hex4(s: &[u8]) -> Result<u32, BadEscape> {
    if s.len() < 4 {
        return Err(BadEscape);
    }
    s[..4].iter().try_fold(0u32, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(BadEscape),
        };
        Ok(acc << 4 | d as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut v = Vec::new();
        escape_jsonlog(s, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn docker_vectors() {
        // The vectors from Docker's jsonlogbytes_test.go.
        assert_eq!(esc(br#""A log line with \""#), r#"\"A log line with \\\""#);
        assert_eq!(esc(b"A log line with \r"), r"A log line with \r");
        assert_eq!(
            esc(b"A log line with & < >"),
            r"A log line with \u0026 \u003c \u003e"
        );
        let utf = "A log line with utf8 : 🚀 ψ ω β";
        assert_eq!(esc(utf.as_bytes()), utf);
        assert_eq!(esc("\u{2028} \u{2029}".as_bytes()), r"\u2028 \u2029");
        assert_eq!(esc(&[0xAF]), r"\ufffd");
        assert_eq!(esc(&[0x7F]), "\x7f");
    }

    #[test]
    fn control_and_invalid() {
        assert_eq!(
            esc(b"a\tb\x00\x1b\x08\x0c\n"),
            r"a\u0009b\u0000\u001b\u0008\u000c\n"
        );
        // Truncated 3-byte sequence: one U+FFFD per byte, like Go.
        assert_eq!(esc(&[0xE2, 0x82, b'A']), r"\ufffd\ufffdA");
        // Surrogate encoded in UTF-8 and overlong encodings are invalid.
        assert_eq!(esc(&[0xED, 0xA0, 0x80]), r"\ufffd\ufffd\ufffd");
        assert_eq!(esc(&[0xC0, 0xAF]), r"\ufffd\ufffd");
        assert_eq!(esc(&[0xF4, 0x90, 0x80, 0x80]), r"\ufffd\ufffd\ufffd\ufffd");
        let mut v = Vec::new();
        escape_go_json(b"a\tb\x08<", &mut v);
        assert_eq!(v, br"a\tb\b\u003c");
    }

    #[test]
    fn unescape_roundtrip() {
        let inputs: [&[u8]; 4] = [
            b"plain",
            b"<&>\"\\\n\r\t\x01",
            "ψ🚀\u{2028}".as_bytes(),
            b"",
        ];
        for s in inputs {
            let mut e = Vec::new();
            escape_jsonlog(s, &mut e);
            let mut d = Vec::new();
            unescape(&e, &mut d).unwrap();
            assert_eq!(d, s);
        }
        let mut d = Vec::new();
        unescape(br"\ud83d\ude80 \ud800x \/", &mut d).unwrap();
        assert_eq!(String::from_utf8(d).unwrap(), "🚀 \u{FFFD}x /");
        assert!(unescape(br"\q", &mut Vec::new()).is_err());
        assert!(unescape(br"\u12", &mut Vec::new()).is_err());
    }
}
