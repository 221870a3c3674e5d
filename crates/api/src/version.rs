//! API versions: the `/v1.NN/` path prefix, and what this server accepts.

use std::fmt;
use std::str::FromStr;

use crate::ApiError;

/// A Docker API version, `1.NN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

/// The newest version berthd speaks: what the stock docker CLI 28 asks for.
pub const CURRENT: ApiVersion = ApiVersion {
    major: 1,
    minor: 50,
};
/// The oldest version berthd accepts.
pub const MIN: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request(format!("invalid API version {s:?}"));
        let (a, b) = s.split_once('.').ok_or_else(bad)?;
        Ok(ApiVersion {
            major: a.parse().map_err(|_| bad())?,
            minor: b.parse().map_err(|_| bad())?,
        })
    }
}

/// Splits `/v1.43/containers/json` into the version and `/containers/json`, and checks
/// the version against what the server supports, with Docker's messages.
pub fn split_path(path: &str) -> Result<(ApiVersion, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((CURRENT, path));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // "/version" also starts with "/v": only a version-shaped segment is a prefix.
    if !ver.contains('.') || !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok((CURRENT, path));
    }
    let v: ApiVersion = ver.parse()?;
    if v < MIN {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version"
        )));
    }
    if v > CURRENT {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {CURRENT}"
        )));
    }
    Ok((v, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_checks_prefixes() {
        assert_eq!(
            split_path("/v1.43/containers/json").unwrap(),
            (
                ApiVersion {
                    major: 1,
                    minor: 43
                },
                "/containers/json"
            )
        );
        assert_eq!(split_path("/version").unwrap(), (CURRENT, "/version"));
        assert_eq!(split_path("/_ping").unwrap(), (CURRENT, "/_ping"));
        let old = split_path("/v1.12/info").unwrap_err();
        assert_eq!(old.status, 400);
        assert!(old.message.contains("too old"));
        assert!(split_path("/v9.99/info")
            .unwrap_err()
            .message
            .contains("too new"));
        // Not version-shaped: an ordinary path (that the router will not find).
        assert_eq!(split_path("/v1.x/info").unwrap(), (CURRENT, "/v1.x/info"));
    }
}
