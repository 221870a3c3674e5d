//! Detach keys (`--detach-keys`, the `detachKeys` query): Docker's syntax, read by the
//! daemon (which watches an attach stream for them) and by the CLI (which watches its
//! terminal).

/// Docker's default sequence: Ctrl-P Ctrl-Q.
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// Parses comma-separated `ctrl-<c>` or single characters (`ctrl-p,ctrl-q`,
/// `a,ctrl-@`); the error is Docker's message.
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("Invalid detach keys ({spec}) provided");
    let mut keys = Vec::new();
    for k in spec.split(',') {
        let k = k.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let &[c] = c.as_bytes() else {
                return Err(bad());
            };
            keys.push(match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            });
        } else if k.len() == 1 {
            keys.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DEFAULT);
        assert_eq!(parse("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse("a,ctrl-@,CTRL-[").unwrap(), vec![b'a', 0, 27]);
        assert!(parse("").is_err());
        assert!(parse("ctrl-").is_err());
        assert!(parse("ctrl-1").is_err());
        assert!(parse("ctrl-pq").is_err());
        assert!(parse("ab").is_err());
    }
}
