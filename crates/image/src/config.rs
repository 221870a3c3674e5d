//! Image configs and manifests.
//!
//! An image's id is the sha256 of its config JSON, so a config is kept as the exact bytes
//! it was loaded from ([`ImageConfig::raw`]) and parsed only for reading. That keeps
//! everything Docker puts in a config (`container_config`, `docker_version`,
//! `Healthcheck`, `OnBuild`, ...) intact through load and save, whatever berth knows of.
//! Parsed views: the OCI one ([`ImageConfig::oci`], from `oci-spec`) and Docker's
//! `config` section ([`RunConfig`], which has the Docker-only fields).

use std::collections::BTreeMap;
use std::time::SystemTime;

use oci_spec::image::{History, ImageConfiguration};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{Digest, DigestError};

/// Errors reading or building configs and manifests.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The bytes are not a valid image config.
    #[error("invalid image config: {0}")]
    Invalid(String),
    /// A `rootfs.diff_ids` entry is not a digest.
    #[error("invalid image config: rootfs.diff_ids: {0}")]
    DiffId(#[from] DigestError),
    /// The bytes are not a valid manifest or index.
    #[error("invalid {what}: {message}")]
    InvalidManifest {
        /// `image manifest` or `image index`.
        what: &'static str,
        /// What is wrong.
        message: String,
    },
}

type Result<T> = std::result::Result<T, ConfigError>;

/// An empty JSON object: the value type of Go's `map[string]struct{}` sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A container health check, as in Docker's image config (`Healthcheck`). Durations are
/// nanoseconds; zero means "inherit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Time a check may take.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Start-up time during which failures do not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Consecutive failures that make the container unhealthy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The `config` section of a Docker image config: the defaults for containers run from
/// the image. Fields berth does not model (Hostname, Tty, ...) are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `user`, `uid`, `user:group`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `port/proto` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// `NAME=value` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Default arguments (or command, without an entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Whether Cmd was already escaped (Windows only; kept for round trips).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Anonymous volume mount points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// ONBUILD triggers, run by builds that use this image as a base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Signal that stops the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Shell for shell-form commands in builds (`SHELL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Everything else Docker wrote, preserved.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image config, as the exact bytes that make its id, with parsed views.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    id: Digest,
    raw: Vec<u8>,
    json: Value,
    oci: ImageConfiguration,
    run: RunConfig,
    diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses config bytes. The id is the sha256 of exactly these bytes.
    pub fn from_bytes(raw: Vec<u8>) -> Result<Self> {
        let json: Value =
            serde_json::from_slice(&raw).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if !json.is_object() {
            return Err(ConfigError::Invalid("not a JSON object".into()));
        }
        let oci: ImageConfiguration = serde_json::from_value(json.clone())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let run = match json.get("config") {
            None | Some(Value::Null) => RunConfig::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| ConfigError::Invalid(format!("config: {e}")))?,
        };
        let diff_ids = oci
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(ImageConfig {
            id: Digest::sha256_of(&raw),
            raw,
            json,
            oci,
            run,
            diff_ids,
        })
    }

    /// The image id: the digest of the config bytes.
    pub fn id(&self) -> &Digest {
        &self.id
    }

    /// The config bytes as loaded; write these, never a re-serialisation.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The whole config as JSON, including fields no typed view has (for inspect).
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The OCI view of the config.
    pub fn oci(&self) -> &ImageConfiguration {
        &self.oci
    }

    /// Docker's `config` section.
    pub fn run_config(&self) -> &RunConfig {
        &self.run
    }

    /// The layers' diff ids, bottom first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.diff_ids
    }

    /// The layers' chain ids, bottom first (the snapshot keys).
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.diff_ids)
    }

    /// The history entries (may include empty layers).
    pub fn history(&self) -> &[History] {
        self.oci.history().as_deref().unwrap_or_default()
    }

    /// A top-level string field, e.g. `comment`, `docker_version`, `created`.
    pub fn string_field(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }
}

/// Chain ids of a layer stack (OCI image spec): `chain[0] = diff[0]`,
/// `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The chain id of the whole stack (`None` for no layers).
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

/// The host platform as Go names it (`GOARCH`, `GOOS`, variant), for new configs.
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "loongarch64" => "loong64",
        other => other,
    };
    let variant = match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    };
    (arch, std::env::consts::OS, variant)
}

/// RFC 3339 with nanoseconds, UTC, as Docker writes `created`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// What a new image config (from `import` or `commit`) is made of.
#[derive(Debug, Clone)]
pub struct NewConfig {
    /// Creation time.
    pub created: SystemTime,
    /// Author (`--author`).
    pub author: Option<String>,
    /// Commit message (`--message`), Docker's top-level `comment`.
    pub comment: Option<String>,
    /// Container defaults.
    pub config: RunConfig,
    /// Layers, bottom first.
    pub diff_ids: Vec<Digest>,
    /// History, one entry per layer plus any empty-layer entries.
    pub history: Vec<History>,
}

impl NewConfig {
    /// Serialises the config for the host platform. The JSON is canonical (sorted keys,
    /// no insignificant whitespace) so equal inputs give equal ids.
    pub fn build(&self) -> Result<ImageConfig> {
        let (arch, os, variant) = host_platform();
        let mut m = serde_json::Map::new();
        m.insert("architecture".into(), arch.into());
        if let Some(a) = &self.author {
            m.insert("author".into(), a.clone().into());
        }
        if let Some(c) = &self.comment {
            m.insert("comment".into(), c.clone().into());
        }
        m.insert("config".into(), to_value(&self.config)?);
        m.insert("created".into(), format_time(self.created).into());
        m.insert("history".into(), to_value(&self.history)?);
        m.insert("os".into(), os.into());
        let diff_ids: Vec<&str> = self.diff_ids.iter().map(Digest::as_str).collect();
        m.insert(
            "rootfs".into(),
            serde_json::json!({ "type": "layers", "diff_ids": diff_ids }),
        );
        if let Some(v) = variant {
            m.insert("variant".into(), v.into());
        }
        let raw = canonical_json(&Value::Object(m));
        ImageConfig::from_bytes(raw)
    }
}

fn to_value(v: &impl Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| ConfigError::Invalid(e.to_string()))
}

/// JSON with object keys sorted at every level, whatever map type serde_json was built
/// with, so that the bytes (and so digests) are reproducible.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).expect("a JSON value serialises")
}

/// Parses an image manifest (OCI or Docker schema 2).
pub fn parse_manifest(bytes: &[u8]) -> Result<oci_spec::image::ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| ConfigError::InvalidManifest {
        what: "image manifest",
        message: e.to_string(),
    })
}

/// Parses an image index (OCI index or Docker manifest list).
pub fn parse_index(bytes: &[u8]) -> Result<oci_spec::image::ImageIndex> {
    serde_json::from_slice(bytes).map_err(|e| ConfigError::InvalidManifest {
        what: "image index",
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config as Docker writes it, with fields no typed view knows.
    const DOCKER_CONFIG: &str = r##"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"Tty":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:abc","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000}},"container":"5a0b","container_config":{"Hostname":"5a0b","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"created":"2023-05-18T22:34:17.429339205Z","docker_version":"20.10.23","history":[{"created":"2023-05-18T22:34:17.304152837Z","created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created":"2023-05-18T22:34:17.429339205Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:9547b4c33213e630a0ca602a989ecc094e042146ae8afa502e1e65af6473db03"]}}"##;

    #[test]
    fn docker_config_round_trips() {
        let c = ImageConfig::from_bytes(DOCKER_CONFIG.as_bytes().to_vec()).unwrap();
        assert_eq!(c.raw(), DOCKER_CONFIG.as_bytes());
        assert_eq!(c.id(), &Digest::sha256_of(DOCKER_CONFIG.as_bytes()));
        assert_eq!(c.diff_ids().len(), 1);
        assert_eq!(c.chain_ids(), c.diff_ids());
        assert_eq!(c.history().len(), 2);
        assert_eq!(c.history()[1].empty_layer(), Some(true));
        assert_eq!(c.string_field("docker_version"), Some("20.10.23"));
        assert!(c.json()["container_config"].is_object());
        let run = c.run_config();
        assert_eq!(run.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(run.healthcheck.as_ref().unwrap().interval, 30_000_000_000);
        assert_eq!(run.extra["Hostname"], Value::String(String::new()));
        assert_eq!(c.oci().os(), &oci_spec::image::Os::Linux);
        // Docker's config section survives re-serialisation with its unknown fields.
        let back = serde_json::to_value(run).unwrap();
        assert_eq!(back["AttachStdin"], Value::Bool(false));
        assert_eq!(back["Image"], Value::String("sha256:abc".into()));
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:nothex"]}}"#,
            r#"{"architecture":"amd64","os":"linux"}"#,
        ] {
            let e = ImageConfig::from_bytes(bad.as_bytes().to_vec()).unwrap_err();
            assert!(e.to_string().starts_with("invalid image config"), "{e}");
        }
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = Digest::sha256_of(b"c");
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], ab);
        assert_eq!(ids[2], Digest::sha256_of(format!("{ab} {c}").as_bytes()));
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(&[a.clone(), b]), Some(ab));
    }

    #[test]
    fn new_config_is_canonical_and_parses() {
        let diff = Digest::sha256_of(b"layer");
        let mut run = RunConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        run.exposed_ports = Some(BTreeMap::from([
            ("80/tcp".to_string(), Empty {}),
            ("53/udp".to_string(), Empty {}),
        ]));
        let mut h = History::default();
        h.set_comment(Some("Imported from -".into()));
        let new = NewConfig {
            created: SystemTime::UNIX_EPOCH,
            author: None,
            comment: Some("msg".into()),
            config: run,
            diff_ids: vec![diff.clone()],
            history: vec![h],
        };
        let c1 = new.build().unwrap();
        let c2 = new.build().unwrap();
        assert_eq!(c1.id(), c2.id());
        assert_eq!(c1.diff_ids(), &[diff]);
        assert_eq!(c1.string_field("comment"), Some("msg"));
        assert_eq!(
            c1.string_field("created"),
            Some("1970-01-01T00:00:00.000000000Z")
        );
        let text = String::from_utf8(c1.raw().to_vec()).unwrap();
        assert!(
            text.contains(r#""ExposedPorts":{"53/udp":{},"80/tcp":{}}"#),
            "{text}"
        );
        assert!(text.starts_with(r#"{"architecture":""#), "{text}");
        assert_eq!(c1.oci().architecture().to_string(), host_platform().0);
    }
}
