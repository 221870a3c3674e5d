//! RFC 3339 timestamps as Go formats and parses them, without allocation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest RFC 3339 UTC timestamp we produce: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub const MAX_LEN: usize = 30;

/// Splits a `SystemTime` into whole seconds since the epoch and nanoseconds.
pub fn to_unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (-(d.as_secs() as i64), d.subsec_nanos());
            if n == 0 {
                (s, 0)
            } else {
                (s - 1, 1_000_000_000 - n)
            }
        }
    }
}

/// Builds a `SystemTime` from seconds since the epoch and nanoseconds.
pub fn from_unix(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

// Howard Hinnant's civil-from-days / days-from-civil (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Caches the `YYYY-MM-DDTHH:MM:SS` prefix of the last second formatted, since
/// a log stream formats many timestamps within the same second.
#[derive(Debug, Default)]
pub struct Formatter {
    secs: Option<i64>,
    prefix: [u8; 19],
}

impl Formatter {
    /// Appends `t` in UTC as Go's `time.RFC3339Nano` (trailing fractional zeros
    /// trimmed, no fraction at all on a whole second) or, with `fixed`, as
    /// Docker's `RFC3339NanoFixed` (always nine digits). Returns false when the
    /// year is outside 0..=9999, which Go refuses to marshal.
    pub fn append(&mut self, t: SystemTime, fixed: bool, out: &mut Vec<u8>) -> bool {
        let (secs, nanos) = to_unix(t);
        if self.secs != Some(secs) {
            let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
            if !(0..=9999).contains(&y) {
                return false;
            }
            let sod = secs.rem_euclid(86_400) as u32;
            let p = &mut self.prefix;
            put_digits(&mut p[0..4], y as u32);
            p[4] = b'-';
            put_digits(&mut p[5..7], mo);
            p[7] = b'-';
            put_digits(&mut p[8..10], d);
            p[10] = b'T';
            put_digits(&mut p[11..13], sod / 3600);
            p[13] = b':';
            put_digits(&mut p[14..16], sod / 60 % 60);
            p[16] = b':';
            put_digits(&mut p[17..19], sod % 60);
            self.secs = Some(secs);
        }
        out.extend_from_slice(&self.prefix);
        if fixed || nanos != 0 {
            let mut frac = [b'.', 0, 0, 0, 0, 0, 0, 0, 0, 0];
            put_digits(&mut frac[1..], nanos);
            let mut len = frac.len();
            if !fixed {
                while frac[len - 1] == b'0' {
                    len -= 1;
                }
            }
            out.extend_from_slice(&frac[..len]);
        }
        out.push(b'Z');
        true
    }
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Formats `t` as Go's `RFC3339Nano` in UTC (for messages and gzip headers).
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let mut v = Vec::with_capacity(MAX_LEN);
    if !Formatter::default().append(t, false, &mut v) {
        return String::new();
    }
    String::from_utf8(v).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp with optional fraction and `Z` or `±HH:MM`.
pub fn parse_rfc3339(s: &[u8]) -> Option<SystemTime> {
    fn num(s: &[u8]) -> Option<u32> {
        s.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    }
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (h, mi, sec) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Go keeps nanosecond precision and ignores further digits.
        for (i, &c) in rest[1..1 + digits].iter().enumerate().take(9) {
            nanos += (c - b'0') as u32 * 10u32.pow(8 - i as u32);
        }
        rest = &rest[1 + digits..];
    }
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let o = num(hh)? as i64 * 3600 + num(&[*m1, *m2])? as i64 * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y as i64, mo, d);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset;
    Some(from_unix(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: SystemTime, fixed: bool) -> String {
        let mut v = Vec::new();
        assert!(Formatter::default().append(t, fixed, &mut v));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn format_like_go() {
        let t = parse_rfc3339(b"2017-09-01T01:01:01.000000001Z").unwrap();
        assert_eq!(fmt(t, false), "2017-09-01T01:01:01.000000001Z");
        let t = parse_rfc3339(b"2026-11-23T18:00:00.1234Z").unwrap();
        assert_eq!(fmt(t, false), "2026-11-23T18:00:00.1234Z");
        assert_eq!(fmt(t, true), "2026-11-23T18:00:00.123400000Z");
        let t = parse_rfc3339(b"2000-02-29T23:59:59Z").unwrap();
        assert_eq!(fmt(t, false), "2000-02-29T23:59:59Z");
        assert_eq!(fmt(UNIX_EPOCH, false), "1970-01-01T00:00:00Z");
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(fmt(before, false), "1969-12-31T23:59:58.5Z");
        assert_eq!(parse_rfc3339(fmt(before, false).as_bytes()), Some(before));
    }

    #[test]
    fn parse_offsets_and_errors() {
        let a = parse_rfc3339(b"2026-01-01T01:30:00+01:30").unwrap();
        let b = parse_rfc3339(b"2026-01-01T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_rfc3339(b"2026-01-01 00:00:00Z").is_none());
        assert!(parse_rfc3339(b"2026-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339(b"2026-01-01T00:00:00.Z").is_none());
        assert!(parse_rfc3339(b"2026-01-01T00:00:00").is_none());
    }

    #[test]
    fn cache_across_seconds() {
        let mut f = Formatter::default();
        let mut v = Vec::new();
        for s in [0u64, 0, 1, 86_399, 86_400] {
            v.clear();
            f.append(UNIX_EPOCH + Duration::from_secs(s), false, &mut v);
            assert_eq!(
                v,
                fmt(UNIX_EPOCH + Duration::from_secs(s), false).as_bytes()
            );
        }
    }
}
