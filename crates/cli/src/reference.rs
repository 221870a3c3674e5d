//! Image references as the docker CLI normalizes them (distribution's `reference`
//! package): `busybox` is `docker.io/library/busybox`, a first component with a `.` or
//! `:` (or `localhost`) names a registry, a tag follows the last `:` of the last
//! component, a digest follows `@`.

use crate::error::{Error, Result};

/// Docker Hub's name in references.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's key in config.json and in `POST /auth` (the v1 index address).
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:5000`, `ghcr.io`.
    pub domain: String,
    /// The repository path in the registry: `library/busybox`, `alice/app`.
    pub path: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), if one was given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `s` as `docker pull` does.
    pub fn parse(s: &str) -> Result<Reference> {
        let invalid = || Error::msg("invalid reference format");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (algo, hex) = d.split_once(':').ok_or_else(invalid)?;
                if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(invalid());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last..].rfind(':') {
            Some(i) => (&rest[..last + i], Some(rest[last + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(invalid());
            }
        }
        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == "index.docker.io" {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("library/{path}");
        }
        if path.is_empty() || domain.is_empty() || path.split('/').any(str::is_empty) {
            return Err(invalid());
        }
        if path.to_lowercase() != path {
            return Err(Error::msg(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            )));
        }
        let component_ok = |c: &str| {
            c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !path.split('/').all(component_ok) {
            return Err(invalid());
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker shows it: `busybox`, `alice/app`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The tag or digest part the API wants in `tag=`: the digest wins.
    pub fn api_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_default()
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The full reference: `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        format!("{}{}", self.name(), self.suffix())
    }

    /// The reference as docker shows it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    /// The key of this reference's registry in config.json: Docker Hub's index address,
    /// else the domain (`127.0.0.1:5000`).
    pub fn auth_key(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            INDEX_SERVER.to_string()
        } else {
            self.domain.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_as_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.full(), "docker.io/library/busybox");
        assert!(r.is_name_only());
        assert_eq!(r.familiar(), "busybox");
        assert_eq!(r.auth_key(), INDEX_SERVER);

        let r = Reference::parse("127.0.0.1:5000/alice/app:v1").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "alice/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.familiar(), "127.0.0.1:5000/alice/app:v1");
        assert_eq!(r.auth_key(), "127.0.0.1:5000");

        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.domain, "localhost");
        let r = Reference::parse("alice/app:1.0").unwrap();
        assert_eq!(r.full(), "docker.io/alice/app:1.0");
        assert_eq!(r.familiar_name(), "alice/app");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("index.docker.io/library/busybox@{d}")).unwrap();
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        assert_eq!(r.api_tag(), d);

        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("a:").is_err());
        assert!(Reference::parse("Busybox").is_err());
        assert!(Reference::parse("busybox@sha256:xyz").is_err());
    }
}
