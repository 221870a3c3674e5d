//! Manifests and indexes as registries serve them (Docker schema 2 and OCI), their media
//! types, and platform selection in a manifest list.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use image::Digest;

use crate::error::{Error, Result};

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 1 (signed), refused as Docker does since v28.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 (unsigned).
pub const DOCKER_SCHEMA1_UNSIGNED: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The `Accept` values sent for manifests, in Docker's order.
pub const MANIFEST_ACCEPT: &[&str] = &[
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

/// The largest manifest accepted (as containerd: 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// A platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `architecture` (GOARCH).
    pub architecture: String,
    /// `os` (GOOS).
    pub os: String,
    /// `variant` (`v8`, `v7`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `os.version` (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// `os.features`.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    /// The host's platform (`linux/amd64`, `linux/arm64/v8`, ...).
    pub fn host() -> Platform {
        let (arch, os, variant) = image::config::host_platform();
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            ..Default::default()
        }
    }

    /// Normalised (os, arch, variant) as containerd's `platforms.Normalize`.
    fn normalized(&self) -> (String, String, String) {
        let os = self.os.to_ascii_lowercase();
        let mut arch = self.architecture.to_ascii_lowercase();
        let mut variant = self
            .variant
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match arch.as_str() {
            "x86_64" | "x86-64" => {
                arch = "amd64".into();
                if variant.is_empty() {
                    variant = "v1".into();
                }
            }
            "amd64" if variant.is_empty() => variant = "v1".into(),
            "aarch64" | "arm64" => {
                arch = "arm64".into();
                if variant.is_empty() || variant == "8" {
                    variant = "v8".into();
                }
            }
            "armhf" => {
                arch = "arm".into();
                variant = "v7".into();
            }
            "armel" => {
                arch = "arm".into();
                variant = "v6".into();
            }
            "arm" => {
                if variant.is_empty() || variant == "7" {
                    variant = "v7".into();
                } else if variant == "5" || variant == "6" || variant == "8" {
                    variant = format!("v{variant}");
                }
            }
            "i386" | "i686" => arch = "386".into(),
            _ => {}
        }
        (os, arch, variant)
    }

    /// How well `candidate` serves this (wanted) platform: `None` when it cannot run,
    /// lower is better (0 = exact). As containerd's `platforms.Only`: arm/v7 also runs
    /// v6 and v5, amd64/vN runs v1..vN.
    pub fn rank(&self, candidate: &Platform) -> Option<u32> {
        let (wos, warch, wvar) = self.normalized();
        let (cos, carch, cvar) = candidate.normalized();
        if wos != cos || warch != carch {
            return None;
        }
        if wvar == cvar {
            return Some(0);
        }
        let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
        match warch.as_str() {
            "arm" | "amd64" => match (level(&wvar), level(&cvar)) {
                (Some(w), Some(c)) if c < w => Some(w - c),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    /// Parses `os[/arch[/variant]]` (as `--platform`); a bare arch gets the host's os.
    fn from_str(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || Error::InvalidInput(format!("invalid platform {s:?}: want os/arch[/variant]"));
        if parts.iter().any(|p| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        }) {
            return Err(bad());
        }
        let host = Platform::host();
        let p = match parts.as_slice() {
            [one]
                if *one == "linux"
                    || *one == "windows"
                    || *one == "darwin"
                    || *one == "freebsd" =>
            {
                Platform {
                    os: one.to_string(),
                    architecture: host.architecture,
                    variant: host.variant,
                    ..Default::default()
                }
            }
            [arch] => Platform {
                os: host.os,
                architecture: arch.to_string(),
                ..Default::default()
            },
            [os, arch] => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                ..Default::default()
            },
            [os, arch, variant] => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
                ..Default::default()
            },
            _ => return Err(bad()),
        };
        Ok(Platform {
            os: p.os.to_ascii_lowercase(),
            architecture: p.architecture.to_ascii_lowercase(),
            ..p
        })
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platform (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Alternative download URLs (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    /// OCI artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor of `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            platform: None,
            urls: None,
            annotations: None,
            artifact_type: None,
        }
    }
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's media type (absent in some OCI manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

impl ImageIndex {
    /// The entry for `platform`: the best-ranked one (see [`Platform::rank`]), the first
    /// in list order on a tie; entries without a platform are skipped.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor> {
        self.manifests
            .iter()
            .enumerate()
            .filter(|(_, d)| d.media_type != OCI_INDEX && d.media_type != DOCKER_MANIFEST_LIST)
            .filter_map(|(i, d)| {
                d.platform
                    .as_ref()
                    .and_then(|p| platform.rank(p))
                    .map(|r| (r, i, d))
            })
            .min_by_key(|(r, i, _)| (*r, *i))
            .map(|(_, _, d)| d)
            .ok_or_else(|| Error::NoMatchingPlatform {
                platform: platform.to_string(),
                available: {
                    let v: Vec<String> = self
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                        .collect();
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.join(", ")
                    }
                },
            })
    }
}

/// A manifest as fetched: its bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    /// The media type (from `Content-Type`, or the body when that is generic).
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// The bytes exactly as served (their digest is the manifest's identity).
    pub bytes: Bytes,
}

/// A parsed manifest.
// Parsed once per pull; boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image manifest.
    Image(ImageManifest),
    /// A manifest list / index.
    Index(ImageIndex),
}

impl RawManifest {
    /// Parses the bytes per the media type; schema 1 and unknown types are refused.
    pub fn parse(&self) -> Result<Manifest> {
        parse_manifest(&self.media_type, &self.bytes)
    }
}

/// Decides a manifest's media type as Docker's `UnmarshalManifest` does: the
/// `Content-Type` when it is a manifest type, else (empty, `application/json`,
/// `text/plain`) the body's `mediaType`, else the body's shape for OCI without
/// `mediaType`. A `mediaType` in the body that disagrees with the header is an error.
pub fn detect_media_type(content_type: Option<&str>, body: &[u8]) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
        #[serde(default)]
        fs_layers: Option<serde_json::Value>,
    }
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let probe: Option<Probe> = serde_json::from_slice(body).ok();
    let body_mt = probe
        .as_ref()
        .and_then(|p| p.media_type.clone())
        .filter(|m| !m.is_empty());
    let unexpected = |mt: &str, reason: &str| Error::UnexpectedMediaType {
        media_type: mt.to_string(),
        reason: reason.to_string(),
    };
    let known = |m: &str| {
        [
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_SCHEMA1,
            DOCKER_SCHEMA1_UNSIGNED,
        ]
        .contains(&m)
    };
    if known(&ct) {
        if let Some(b) = &body_mt {
            if *b != ct {
                return Err(unexpected(
                    &ct,
                    &format!("the manifest body says its mediaType is {b:?}"),
                ));
            }
        }
        return Ok(ct);
    }
    if !(ct.is_empty() || ct == "application/json" || ct == "text/plain") {
        return Err(unexpected(&ct, "not a manifest media type"));
    }
    let Some(p) = probe else {
        return Err(unexpected(&ct, "the body is not a JSON manifest"));
    };
    if let Some(b) = body_mt {
        return if known(&b) {
            Ok(b)
        } else {
            Err(unexpected(&b, "not a manifest media type"))
        };
    }
    match (
        p.schema_version,
        p.manifests.is_some(),
        p.config.is_some(),
        p.fs_layers.is_some(),
    ) {
        (Some(1), ..) | (_, _, _, true) => Ok(DOCKER_SCHEMA1.to_string()),
        (Some(2), true, false, _) => Ok(OCI_INDEX.to_string()),
        (Some(2), false, true, _) => Ok(OCI_MANIFEST.to_string()),
        _ => Err(unexpected(
            &ct,
            "cannot tell what kind of manifest the body is",
        )),
    }
}

/// Parses a manifest of a known media type.
pub fn parse_manifest(media_type: &str, bytes: &[u8]) -> Result<Manifest> {
    let bad = |e: serde_json::Error| Error::UnexpectedMediaType {
        media_type: media_type.to_string(),
        reason: format!("the body does not parse as one: {e}"),
    };
    match media_type {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_slice(bytes).map_err(bad)?;
            if m.schema_version != 2 {
                return Err(Error::UnexpectedMediaType {
                    media_type: media_type.to_string(),
                    reason: format!("schemaVersion {} (want 2)", m.schema_version),
                });
            }
            Ok(Manifest::Image(m))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let m: ImageIndex = serde_json::from_slice(bytes).map_err(bad)?;
            if m.schema_version != 2 {
                return Err(Error::UnexpectedMediaType {
                    media_type: media_type.to_string(),
                    reason: format!("schemaVersion {} (want 2)", m.schema_version),
                });
            }
            Ok(Manifest::Index(m))
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_UNSIGNED => Err(Error::UnexpectedMediaType {
            media_type: media_type.to_string(),
            reason: "Docker Image Format v1 and Docker Image manifest version 2, schema 1 \
                     support has been removed; push the image again with a newer client"
                .to_string(),
        }),
        other => Err(Error::UnexpectedMediaType {
            media_type: other.to_string(),
            reason: "not a manifest media type".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, n: u8) -> Descriptor {
        let mut d = Descriptor::of(DOCKER_MANIFEST, &[n]);
        d.platform = Some(p.parse().unwrap());
        d
    }

    #[test]
    fn platform_parse_display() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux//".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert!("linux/am d64".parse::<Platform>().is_err());
        let host = Platform::host();
        assert_eq!(host.os, "linux");
    }

    #[test]
    fn selects_platform() {
        let idx = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                entry("linux/arm/v6", 1),
                entry("linux/arm64/v8", 2),
                entry("linux/amd64", 3),
                entry("linux/arm/v7", 4),
                entry("unknown/unknown", 5),
                entry("windows/amd64", 6),
            ],
            annotations: None,
        };
        let pick = |p: &str| idx.select(&p.parse().unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), idx.manifests[2].digest);
        assert_eq!(
            pick("linux/arm64").unwrap(),
            idx.manifests[1].digest,
            "arm64 = arm64/v8"
        );
        assert_eq!(
            pick("linux/arm/v7").unwrap(),
            idx.manifests[3].digest,
            "exact beats older"
        );
        assert_eq!(pick("linux/arm/v6").unwrap(), idx.manifests[0].digest);
        assert_eq!(pick("windows/amd64").unwrap(), idx.manifests[5].digest);
        let e = pick("linux/s390x").unwrap_err();
        assert!(matches!(e, Error::NoMatchingPlatform { .. }));
        assert!(e.to_string().contains("linux/s390x"), "{e}");

        // arm/v7 runs v6 when there is no v7; amd64/v3 runs the plain amd64.
        let idx2 = ImageIndex {
            manifests: vec![
                entry("linux/arm/v6", 1),
                entry("linux/arm/v5", 2),
                entry("linux/amd64", 3),
            ],
            ..idx.clone()
        };
        assert_eq!(
            idx2.select(&"linux/arm/v7".parse().unwrap())
                .unwrap()
                .digest,
            idx2.manifests[0].digest
        );
        assert_eq!(
            idx2.select(&"linux/amd64/v3".parse().unwrap())
                .unwrap()
                .digest,
            idx2.manifests[2].digest
        );
        assert!(
            idx2.select(&"linux/arm/v5".parse().unwrap())
                .unwrap()
                .digest
                == idx2.manifests[1].digest
        );
    }

    #[test]
    fn media_types() {
        let oci = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#;
        assert_eq!(
            detect_media_type(Some("application/json"), oci).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(detect_media_type(None, oci).unwrap(), OCI_MANIFEST);
        assert_eq!(
            detect_media_type(Some(OCI_MANIFEST), oci).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            detect_media_type(Some(&format!("{DOCKER_MANIFEST}; charset=utf-8")), oci).unwrap(),
            DOCKER_MANIFEST
        );
        assert!(detect_media_type(Some("text/html"), oci).is_err());
        let listed = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(
            detect_media_type(Some("application/json"), listed).unwrap(),
            DOCKER_MANIFEST_LIST
        );
        assert!(
            detect_media_type(Some(DOCKER_MANIFEST), listed).is_err(),
            "header and body disagree"
        );
        assert!(parse_manifest(DOCKER_SCHEMA1, b"{}").is_err());
        assert!(parse_manifest(OCI_MANIFEST, b"[").is_err());
        assert!(detect_media_type(None, b"<html>").is_err());
    }
}
