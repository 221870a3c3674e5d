//! Credentials, the `X-Registry-Auth` header, `WWW-Authenticate` challenges, and the
//! bearer-token cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::error::{Error, Result};

/// What the caller knows to authenticate with; the daemon takes it from `X-Registry-Auth`
/// (see [`AuthConfig`]), the CLI from `~/.docker/config.json`.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: anonymous tokens only.
    #[default]
    Anonymous,
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`) traded for access tokens at the realm.
    IdentityToken(String),
    /// A bearer token sent as is (`registrytoken`).
    RegistryToken(String),
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// True for [`Credentials::Anonymous`].
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }

    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(basic_header(username, password)),
            _ => None,
        }
    }
}

pub(crate) fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl fmt::Debug for Credentials {
    /// Never prints secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(***)"),
        }
    }
}

/// Docker's `AuthConfig`, as the CLI sends it base64url-encoded in `X-Registry-Auth`
/// (pull, push) and as JSON in the body of `POST /auth` (login).
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64(`user:password`), as stored in config.json; used when the fields above are
    /// empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Deprecated, ignored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The registry these credentials are for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// An OAuth2 refresh token from an earlier login.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token to send as is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not; standard base64 is
    /// accepted too) of the JSON object. An empty header (or `{}`) is anonymous.
    pub fn from_header(value: &str) -> Result<AuthConfig> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(AuthConfig::default());
        }
        let raw = decode_base64_any(value).ok_or_else(|| {
            Error::InvalidInput("invalid X-Registry-Auth header: not base64url".to_string())
        })?;
        AuthConfig::from_json(&raw)
    }

    /// Decodes the JSON form (`POST /auth`'s body).
    pub fn from_json(raw: &[u8]) -> Result<AuthConfig> {
        let trimmed = raw.iter().filter(|b| !b.is_ascii_whitespace()).count();
        if trimmed == 0 {
            return Ok(AuthConfig::default());
        }
        serde_json::from_slice(raw)
            .map_err(|e| Error::InvalidInput(format!("invalid X-Registry-Auth header: {e}")))
    }

    /// Encodes as the CLI does for `X-Registry-Auth` (base64url of the JSON).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// The credentials to use: a registry token first, then an identity token, then user
    /// and password (from `auth` when the fields are empty), else anonymous.
    pub fn credentials(&self) -> Credentials {
        if !self.registrytoken.is_empty() {
            return Credentials::RegistryToken(self.registrytoken.clone());
        }
        if !self.identitytoken.is_empty() {
            return Credentials::IdentityToken(self.identitytoken.clone());
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Credentials::basic(&self.username, &self.password);
        }
        if !self.auth.is_empty() {
            if let Some(raw) = decode_base64_any(&self.auth) {
                if let Ok(s) = String::from_utf8(raw) {
                    if let Some((u, p)) = s.split_once(':') {
                        return Credentials::basic(u, p);
                    }
                }
            }
        }
        Credentials::Anonymous
    }
}

fn decode_base64_any(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, keys lowercased (`realm`, `service`, `scope`, `error`).
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// A parameter by (lowercase) name.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` value (RFC 7235): one or more challenges, each a scheme
/// and comma-separated `key=value` / `key="quoted value"` parameters. Garbage yields
/// fewer (or no) challenges, never a panic.
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c);
    let skip_ws_commas = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws_commas(&mut i);
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip one byte and go on.
            i += 1;
            continue;
        }
        let token = &value[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            let mut val = String::new();
            if j < b.len() && b[j] == b'"' {
                j += 1;
                let mut bytes = Vec::new();
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    bytes.push(b[j]);
                    j += 1;
                }
                j += 1; // closing quote (or past the end)
                val = String::from_utf8_lossy(&bytes).into_owned();
            } else {
                let vs = j;
                while j < b.len() && b[j] != b',' && b[j] != b' ' && b[j] != b'\t' {
                    j += 1;
                }
                val.push_str(&value[vs..j.min(b.len())]);
            }
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), val);
            }
            i = j.min(b.len());
        } else if j < b.len() && b[j] == b'=' {
            // token68 or param before any scheme: ignore up to the next comma.
            while j < b.len() && b[j] != b',' {
                j += 1;
            }
            i = j;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: HashMap::new(),
            });
            i = j;
        }
    }
    out
}

/// An access token from a token server.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// The token server's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<(Token, Option<String>)> {
        let value = if self.access_token.is_empty() {
            self.token
        } else {
            self.access_token
        };
        if value.is_empty() {
            return None;
        }
        // 60 s is the spec's minimum; renew 10 % before expiry.
        let secs = self.expires_in.unwrap_or(60).max(60);
        let expires = Instant::now() + Duration::from_secs(secs - secs / 10);
        Some((Token { value, expires }, self.refresh_token))
    }
}

/// Bearer tokens per (registry, credentials, scope), dropped once expired.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    pub fn get(&self, key: &(String, String)) -> Option<String> {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some(t) if t.expires > Instant::now() => Some(t.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: (String, String), token: Token) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| t.expires > Instant::now());
        map.insert(key, token);
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_bearer() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:library/busybox:pull,push")
        );
    }

    #[test]
    fn parses_basic_and_several_challenges() {
        let c = parse_www_authenticate(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));

        let c = parse_www_authenticate(
            r#"Basic realm="a b", Bearer realm=https://x/token, service="s\"q", error=insufficient_scope"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://x/token"));
        assert_eq!(c[1].param("service"), Some("s\"q"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer =x",
            "é=\"",
            "Bearer realm=",
        ] {
            let _ = parse_www_authenticate(s);
        }
        assert!(parse_www_authenticate("").is_empty());
        let c = parse_www_authenticate("Bearer realm=");
        assert_eq!(c[0].param("realm"), Some(""));
    }

    #[test]
    fn decodes_x_registry_auth() {
        // As the docker CLI sends it: base64url with padding.
        let json = r#"{"username":"u","password":"p+/?","serveraddress":"localhost:5000"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let a = AuthConfig::from_header(&h).unwrap();
        assert_eq!(a.serveraddress, "localhost:5000");
        assert_eq!(a.credentials(), Credentials::basic("u", "p+/?"));
        // Unpadded and standard alphabets too.
        let h2 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        assert_eq!(AuthConfig::from_header(&h2).unwrap(), a);
        // Round trip.
        assert_eq!(AuthConfig::from_header(&a.to_header()).unwrap(), a);
        // Identity and registry tokens win over passwords.
        let t = AuthConfig {
            identitytoken: "id".into(),
            username: "u".into(),
            ..Default::default()
        };
        assert_eq!(t.credentials(), Credentials::IdentityToken("id".into()));
        let t = AuthConfig {
            registrytoken: "rt".into(),
            identitytoken: "id".into(),
            ..Default::default()
        };
        assert_eq!(t.credentials(), Credentials::RegistryToken("rt".into()));
        // `auth` alone.
        let t = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("me:se:cret"),
            ..Default::default()
        };
        assert_eq!(t.credentials(), Credentials::basic("me", "se:cret"));
        // Empty means anonymous; garbage is an error, not a panic.
        assert_eq!(
            AuthConfig::from_header("").unwrap().credentials(),
            Credentials::Anonymous
        );
        let e30 = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert_eq!(
            AuthConfig::from_header(&e30).unwrap(),
            AuthConfig::default()
        );
        assert!(AuthConfig::from_header("!!!").is_err());
        let notjson = base64::engine::general_purpose::URL_SAFE.encode("nope");
        assert!(AuthConfig::from_header(&notjson).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", Credentials::basic("u", "hunter2"));
        assert!(!s.contains("hunter2"));
    }
}
