//! Which registries may be reached how: daemon.json's `insecure-registries` (host:port
//! entries and CIDRs), loopback, `registry-mirrors`, and Docker Hub's real host.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// How the client reaches registries; built from daemon.json's keys.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where `<host:port>/ca.crt`, `*.crt`, `client.cert`, `client.key` live
    /// (`/etc/berth/certs.d`).
    pub certs_dir: PathBuf,
    /// `insecure-registries`: `host[:port]` entries and CIDRs. These (and loopback) may be
    /// reached over https without verification or over plain http.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: URLs tried in order before Docker Hub, for pulls only.
    pub registry_mirrors: Vec<String>,
    /// Treat loopback registries (127.0.0.0/8, ::1, `localhost`) as insecure, as Docker
    /// always does. Only tests that need strict TLS on loopback turn it off.
    pub loopback_insecure: bool,
    /// Redirects followed per request before giving up.
    pub max_redirects: usize,
    /// Timeout for a TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Timeout for the response head of a request (bodies stream without one).
    pub response_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Upload chunk size: `None` uploads each blob in one `PUT` (monolithic), `Some(n)`
    /// sends `PATCH` requests of `n` bytes, then a closing `PUT`.
    pub upload_chunk_size: Option<usize>,
    /// How often a blob download interrupted by the network resumes (with `Range`) before
    /// the error is reported.
    pub blob_resume_attempts: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            loopback_insecure: true,
            max_redirects: 10,
            connect_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(120),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            upload_chunk_size: None,
            blob_resume_attempts: 3,
        }
    }
}

/// A parsed `insecure-registries` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsecureEntry {
    /// A network: addresses of the registry's host in it are insecure.
    Cidr(IpAddr, u8),
    /// An exact `host[:port]` name.
    Name(String),
}

impl InsecureEntry {
    /// Parses an entry as daemon.json holds it; a scheme (`http://`) is refused, as Docker
    /// does.
    pub fn parse(s: &str) -> Result<InsecureEntry> {
        let s = s.trim();
        if s.contains("://") {
            return Err(Error::InvalidInput(format!(
                "insecure registry {s} should not contain '://'"
            )));
        }
        if s.is_empty() {
            return Err(Error::InvalidInput("empty insecure registry".into()));
        }
        if let Some((addr, bits)) = s.split_once('/') {
            let ip: IpAddr = addr.parse().map_err(|_| {
                Error::InvalidInput(format!("invalid CIDR {s:?} in insecure-registries"))
            })?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                Error::InvalidInput(format!("invalid CIDR {s:?} in insecure-registries"))
            })?;
            return Ok(InsecureEntry::Cidr(ip, bits));
        }
        Ok(InsecureEntry::Name(s.trim_end_matches('/').to_string()))
    }
}

/// True when `ip` is in `net/bits` (IPv4-mapped IPv6 addresses match IPv4 networks).
pub fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = u32::from(bits.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = u32::from(bits.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into host (brackets kept off) and port.
pub fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// The security policy of a client.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    entries: Vec<InsecureEntry>,
}

impl Policy {
    pub fn new(config: &RegistryConfig) -> Result<Policy> {
        let mut entries = config
            .insecure_registries
            .iter()
            .map(|s| InsecureEntry::parse(s))
            .collect::<Result<Vec<_>>>()?;
        if config.loopback_insecure {
            entries.push(InsecureEntry::Cidr(IpAddr::from([127, 0, 0, 0]), 8));
            entries.push(InsecureEntry::Cidr(
                "::1".parse().unwrap_or(IpAddr::from([0u8; 16])),
                128,
            ));
        }
        Ok(Policy { entries })
    }

    /// Docker's `isSecureIndex`: a `host:port` entry decides by exact name; otherwise the
    /// registry is insecure when any address of its host is in an insecure CIDR
    /// (`addrs` are the host's resolved addresses; an IP literal is its own address).
    pub fn is_insecure(&self, registry: &str, addrs: &[IpAddr]) -> bool {
        if registry == DOCKER_HUB || registry == DOCKER_HUB_REGISTRY {
            return false;
        }
        if self
            .entries
            .iter()
            .any(|e| matches!(e, InsecureEntry::Name(n) if n == registry))
        {
            return true;
        }
        let (host, _) = split_host_port(registry);
        let mut all: Vec<IpAddr> = addrs.to_vec();
        if let Ok(ip) = host.parse::<IpAddr>() {
            all.push(ip);
        }
        all.iter().any(|ip| {
            self.entries
                .iter()
                .any(|e| matches!(e, InsecureEntry::Cidr(n, b) if cidr_contains(*n, *b, *ip)))
        })
    }

    /// True when a CIDR entry exists, i.e. deciding needs the host's addresses.
    pub fn needs_lookup(&self, registry: &str) -> bool {
        let (host, _) = split_host_port(registry);
        host.parse::<IpAddr>().is_err()
            && self
                .entries
                .iter()
                .any(|e| matches!(e, InsecureEntry::Cidr(..)))
    }
}

/// The host to contact for a reference domain: Docker Hub's API host for `docker.io`.
pub fn registry_host(domain: &str) -> &str {
    match domain {
        DOCKER_HUB | "index.docker.io" | "registry.hub.docker.com" => DOCKER_HUB_REGISTRY,
        d => d,
    }
}

/// Normalises a `docker login` server argument (`https://index.docker.io/v1/`,
/// `localhost:5000`, `http://x:5000/`) to a registry domain.
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or("");
    match s {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => DOCKER_HUB.to_string(),
        other => other.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_matching() {
        assert!(cidr_contains(ip("10.0.0.0"), 8, ip("10.1.2.3")));
        assert!(!cidr_contains(ip("10.0.0.0"), 8, ip("11.0.0.1")));
        assert!(cidr_contains(ip("192.168.1.0"), 24, ip("192.168.1.255")));
        assert!(!cidr_contains(ip("192.168.1.0"), 24, ip("192.168.2.0")));
        assert!(cidr_contains(ip("0.0.0.0"), 0, ip("8.8.8.8")));
        assert!(cidr_contains(ip("127.0.0.0"), 8, ip("::ffff:127.0.0.5")));
        assert!(cidr_contains(ip("fd00::"), 8, ip("fd12::1")));
        assert!(!cidr_contains(ip("fd00::"), 8, ip("fe80::1")));
        assert!(!cidr_contains(ip("10.0.0.0"), 8, ip("fd00::1")));
        assert!(cidr_contains(ip("::1"), 128, ip("::1")));
    }

    #[test]
    fn entries_parse() {
        assert_eq!(
            InsecureEntry::parse("10.0.0.0/8").unwrap(),
            InsecureEntry::Cidr(ip("10.0.0.0"), 8)
        );
        assert_eq!(
            InsecureEntry::parse("myreg:5000").unwrap(),
            InsecureEntry::Name("myreg:5000".into())
        );
        assert!(InsecureEntry::parse("http://myreg").is_err());
        assert!(InsecureEntry::parse("10.0.0.0/33").is_err());
        assert!(InsecureEntry::parse("nope/8").is_err());
        assert!(InsecureEntry::parse("").is_err());
    }

    #[test]
    fn docker_decisions() {
        let cfg = RegistryConfig {
            insecure_registries: vec!["myreg:5000".into(), "10.0.0.0/8".into()],
            ..Default::default()
        };
        let p = Policy::new(&cfg).unwrap();
        assert!(p.is_insecure("myreg:5000", &[]));
        assert!(
            !p.is_insecure("myreg:5001", &[]),
            "host:port entries match exactly"
        );
        assert!(!p.is_insecure("myreg", &[]));
        assert!(p.is_insecure("10.3.4.5:443", &[]));
        assert!(p.is_insecure("reg.internal", &[ip("10.9.9.9")]));
        assert!(!p.is_insecure("reg.example", &[ip("93.184.216.34")]));
        assert!(p.is_insecure("127.0.0.1:5000", &[]), "loopback");
        assert!(p.is_insecure("[::1]:5000", &[]), "loopback v6");
        assert!(p.is_insecure("localhost:5000", &[ip("127.0.0.1")]));
        assert!(
            !p.is_insecure("docker.io", &[ip("10.0.0.1")]),
            "Docker Hub is always secure"
        );
        assert!(p.needs_lookup("localhost:5000"));
        assert!(!p.needs_lookup("127.0.0.1:5000"));

        let strict = Policy::new(&RegistryConfig {
            loopback_insecure: false,
            ..Default::default()
        })
        .unwrap();
        assert!(!strict.is_insecure("127.0.0.1:5000", &[]));
    }

    #[test]
    fn host_port_and_servers() {
        assert_eq!(split_host_port("a:5000"), ("a", Some(5000)));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some(5000)));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_server(""), "docker.io");
        assert_eq!(normalize_server("http://LocalHost:5000/"), "localhost:5000");
        assert_eq!(registry_host("docker.io"), "registry-1.docker.io");
        assert_eq!(registry_host("quay.io"), "quay.io");
    }
}
