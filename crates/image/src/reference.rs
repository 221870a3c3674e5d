//! Image references, parsed and normalised as Docker does (the
//! `github.com/distribution/reference` grammar and its `ParseNormalizedNamed`).
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path
//! domain           := host [':' port]     host: domain-name | '[' IPv6 ']'
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path             := path-component ['/' path-component]*
//! path-component   := [a-z0-9]+ ( ( [._] | __ | [-]+ ) [a-z0-9]+ )*
//! tag              := [\w][\w.-]{0,127}
//! ```
//!
//! The first path element is a domain when it contains `.` or `:`, is `localhost`, or
//! has an uppercase letter; otherwise the domain is `docker.io`, and a single-element
//! path on `docker.io` gets the `library/` prefix.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag added to a reference that has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (domain and path) Docker accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference that does not parse; messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path has uppercase letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// An uppercase letter in a place where only the lowercase form would parse.
    #[error("invalid reference format: repository name must be lowercase")]
    NameContainsUppercase,
    /// Domain and path are longer than 255 characters.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A 64-hex string is an image id and cannot be a repository name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// The tag does not match `[\w][\w.-]{0,127}`.
    #[error("invalid tag format")]
    InvalidTag,
    /// The digest part is well-formed but not one berth can use.
    #[error("invalid reference format: {0}")]
    Digest(#[from] DigestError),
}

/// A normalised image reference: domain, repository path, and tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference as `docker pull`/`docker tag` do, adding the `latest` tag when
    /// there is neither tag nor digest: `busybox` is `docker.io/library/busybox:latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises a reference without adding a default tag (Docker's
    /// `ParseNormalizedNamed`), e.g. for `docker pull --all-tags` or `docker images NAME`.
    pub fn parse_named(s: &str) -> Result<Self, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }
        parse_full(&domain, &remainder)
    }

    /// The registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full name without tag or digest: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The familiar name without tag or digest, as Docker shows it: `busybox`,
    /// `user/repo`, `localhost:5000/x`.
    pub fn name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.full_name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The familiar form with tag and digest, as `docker images` shows it:
    /// `busybox:latest`, `user/repo:tag`, `localhost:5000/x:tag`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.name())
    }

    /// This reference with `tag` (replacing any tag, keeping the digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(ImageRef {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// This reference with `digest` (replacing any digest, keeping the tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The bare repository, without tag and digest.
    pub fn without_tag_or_digest(&self) -> Self {
        ImageRef {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(d.as_str());
        }
        name
    }
}

impl fmt::Display for ImageRef {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.full_name()))
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ImageRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageRef::parse_named(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `s` may name an image by id rather than by reference: `sha256:` followed by
/// 1 to 64 lowercase hex, or 1 to 64 bare lowercase hex (a possibly short id). Short hex
/// strings are also valid repository names; like Docker, the caller tries the name
/// first and the id prefix second.
pub fn is_id_like(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(is_lower_hex)
}

/// A full image id from `s`: 64 lowercase hex, with or without `sha256:`.
pub fn parse_id(s: &str) -> Option<Digest> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if is_full_hex_id(hex) {
        Digest::from_sha256_hex(hex).ok()
    } else {
        None
    }
}

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(is_lower_hex)
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Docker's `Parse` of `domain/remainder`, the domain already split off.
fn parse_full(domain: &str, remainder: &str) -> Result<ImageRef, ReferenceError> {
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_tag.rsplit_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (name_tag, None),
    };
    let grammar_ok = is_valid_domain(domain)
        && is_valid_path(path)
        && tag.is_none_or(is_valid_tag)
        && digest.is_none_or(is_valid_digest_grammar);
    if !grammar_ok {
        // Docker reports an uppercase problem when the lowercased string would parse.
        let lower_ok = is_valid_domain(&domain.to_lowercase())
            && is_valid_path(&path.to_lowercase())
            && tag.is_none_or(is_valid_tag)
            && digest.is_none_or(is_valid_digest_grammar);
        if lower_ok && !is_valid_path(path) {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = digest.map(Digest::parse).transpose()?;
    Ok(ImageRef {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn is_valid_domain(domain: &str) -> bool {
    // host [':' port]; an IPv6 host is bracketed and contains ':' itself.
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty() && host.split('.').all(is_valid_domain_component)
}

fn is_valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_path_component)
}

/// `[a-z0-9]+ ( ( [._] | __ | [-]+ ) [a-z0-9]+ )*`
fn is_valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // One run of alphanumerics.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // One separator.
        let sep_start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm-component ([+._-] algorithm-component)* ':' [0-9a-fA-F]{32,}`
fn is_valid_digest_grammar(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn full(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/repo"), "docker.io/user/repo:latest");
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("index.docker.io/user/r:t"), "docker.io/user/r:t");
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(
            full("registry.example.com/a/b:tag"),
            "registry.example.com/a/b:tag"
        );
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            full(&format!("busybox:1@{D}")),
            format!("docker.io/library/busybox:1@{D}")
        );
        assert_eq!(full("[::1]:5000/x:y"), "[::1]:5000/x:y");
        assert_eq!(
            full("Registry.Example.com/a"),
            "Registry.Example.com/a:latest"
        );
        // A bare `host:port` is a name with a tag, as in Docker.
        assert_eq!(full("localhost:5000"), "docker.io/library/localhost:5000");
        assert_eq!(
            full("a__b/c--d/e.f_g:T_1.x-2"),
            "docker.io/a__b/c--d/e.f_g:T_1.x-2"
        );
    }

    #[test]
    fn accessors_and_familiar() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.name(), "busybox");
        assert_eq!(
            ImageRef::parse("user/repo:tag").unwrap().familiar(),
            "user/repo:tag"
        );
        assert_eq!(
            ImageRef::parse("localhost:5000/x:tag").unwrap().familiar(),
            "localhost:5000/x:tag"
        );
        assert_eq!(
            ImageRef::parse("library/a/b").unwrap().familiar(),
            "library/a/b:latest"
        );
        let d = ImageRef::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(d.tag(), None);
        assert_eq!(d.digest().unwrap().as_str(), D);
        assert_eq!(d.familiar(), format!("busybox@{D}"));
        let named = ImageRef::parse_named("busybox").unwrap();
        assert_eq!(named.tag(), None);
        assert_eq!(named.with_tag("x").unwrap().familiar(), "busybox:x");
        assert!(named.with_tag(".x").is_err());
    }

    #[test]
    fn rejects_like_docker() {
        let msg = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
        assert_eq!(
            msg("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            msg("user/Repo:tag"),
            "invalid reference format: repository name (user/Repo) must be lowercase"
        );
        for bad in [
            "",
            ":tag",
            "busybox:",
            "busybox:.tag",
            "busybox:-tag",
            "bu sybox",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "a.-b",
            "-a",
            "busybox@sha256:short",
            "busybox@@x",
            "reg:port/x",
            "reg-.com/x",
            "[zz]:5000/x",
            "busybox:a:b",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(msg("a..b"), "invalid reference format");
        let long_tag = "t".repeat(129);
        assert!(ImageRef::parse(&format!("a:{long_tag}")).is_err());
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        let long = "a".repeat(250);
        assert_eq!(
            msg(&format!("x/{long}")),
            "repository name must not be more than 255 characters"
        );
        let hex = "a".repeat(64);
        assert_eq!(
            msg(&hex),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
        // Grammatically fine but an algorithm berth does not know.
        assert!(msg("a@foo:0123456789abcdef0123456789abcdef")
            .starts_with("invalid reference format: invalid digest"));
    }

    #[test]
    fn id_like() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(is_id_like(hex));
        assert!(is_id_like(&format!("sha256:{hex}")));
        assert!(is_id_like("e3b0c4"));
        assert!(!is_id_like("busybox"));
        assert!(!is_id_like(""));
        assert!(!is_id_like(&format!("{hex}0")));
        assert_eq!(parse_id(hex).unwrap().hex(), hex);
        assert_eq!(parse_id(&format!("sha256:{hex}")).unwrap().hex(), hex);
        assert!(parse_id("e3b0c4").is_none());
    }

    #[test]
    fn serde_as_string() {
        let r = ImageRef::parse("busybox").unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&j).unwrap(), r);
    }
}
