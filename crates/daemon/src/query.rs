//! Query strings as Docker reads them: repeated keys, percent-decoding, Go's boolean
//! convention, and the `filters` JSON.

use std::collections::BTreeMap;

use api::ApiError;

/// A parsed query string.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

/// Percent-decodes `s` (`+` is a space, as in forms). Invalid escapes stay as they are.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                // Bytes, not a str slice: the next two may be inside a UTF-8 character.
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: absent, empty, `0`, `no`, `false` and `none` are false.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// The `filters` parameter: `{"key":["v1","v2"]}`, or the older
    /// `{"key":{"v1":true}}`. Absent or empty: no filters.
    pub fn filters(&self) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get("filters").filter(|r| !r.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: not a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                serde_json::Value::Object(m) => Some(
                    m.iter()
                        .filter(|(_, on)| on.as_bool() == Some(true))
                        .map(|(v, _)| v.clone())
                        .collect(),
                ),
                _ => None,
            }
            .ok_or_else(|| ApiError::bad_request(format!("invalid filter '{k}'")))?;
            out.insert(k.clone(), list);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeats_escapes_and_bools() {
        let q = Query::parse(Some("names=a%2Fb&names=c&quiet=1&force=false&x=%zz"));
        assert_eq!(q.all("names"), ["a/b", "c"]);
        assert!(q.bool("quiet"));
        assert!(!q.bool("force"));
        assert!(!q.bool("missing"));
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(decode("a%"), "a%");
    }

    #[test]
    fn both_filter_forms() {
        let q = Query::parse(Some(
            "filters=%7B%22dangling%22%3A%5B%22true%22%5D%2C%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        let f = q.filters().unwrap();
        assert_eq!(f["dangling"], ["true"]);
        assert_eq!(f["label"], ["a=b"]);
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
    }
}
