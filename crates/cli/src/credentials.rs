//! Registry credentials as the docker CLI keeps them: `config.json` in `$DOCKER_CONFIG`
//! (default `~/.docker`), `auths.<server>.auth` = base64(`user:password`), written with
//! mode 0600; or a credential helper named by `credHelpers.<server>` or `credsStore`,
//! run as `docker-credential-<name> store|get|erase` with Docker's JSON protocol on
//! stdin and stdout. Every other key of config.json is kept as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Docker's `AuthConfig`: what `POST /auth` takes as JSON and `X-Registry-Auth` carries
/// base64url-encoded.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// No user, password or token.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identitytoken.is_empty()
    }

    /// The `X-Registry-Auth` header: base64url of the JSON, as the docker CLI encodes it
    /// (`{}` for anonymous).
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

/// `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

/// `https://host:port/v1/` → `host:port`, as docker's `ConvertToHostname`.
pub fn hostname(server: &str) -> &str {
    let s = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s)
}

/// config.json, read whole and written back whole.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl ConfigFile {
    /// Reads `dir/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<ConfigFile> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(raw) if raw.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(raw) => serde_json::from_slice(&raw)
                .map_err(|e| Error::msg(format!("loading config file: {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(Error::msg(format!(
                    "loading config file: {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(ConfigFile { path, doc })
    }

    /// config.json in [`config_dir`].
    pub fn load_default() -> Result<ConfigFile> {
        ConfigFile::load(&config_dir())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file back through a temporary file in the same directory (so a crash
    /// never leaves half a file), mode 0600, following a symlinked config.json.
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let target = std::fs::read_link(&self.path)
            .map(|t| match self.path.parent() {
                Some(p) if t.is_relative() => p.join(t),
                _ => t,
            })
            .unwrap_or_else(|_| self.path.clone());
        let dir = target.parent().unwrap_or(Path::new("."));
        let err = |e: std::io::Error| Error::msg(format!("saving config file: {e}"));
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        self.doc.serialize(&mut ser)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config.json"),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // An old temporary file keeps its mode: set it.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    /// The credential helper for `server`: `credHelpers` by address or host name, else
    /// `credsStore`.
    pub fn helper_for(&self, server: &str) -> Option<String> {
        let str_of = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(helpers) = self.doc.get("credHelpers").and_then(Value::as_object) {
            if let Some(h) = helpers.get(server).and_then(str_of) {
                return Some(h);
            }
            let host = hostname(server);
            if let Some(h) = helpers
                .iter()
                .find(|(k, _)| hostname(k) == host)
                .and_then(|(_, v)| str_of(v))
            {
                return Some(h);
            }
        }
        self.doc.get("credsStore").and_then(str_of)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        auths.as_object_mut().expect("an object")
    }

    /// The credentials stored for `server` (empty when there are none).
    pub fn get(&self, server: &str) -> Result<AuthConfig> {
        match self.helper_for(server) {
            Some(h) => helper_get(&h, server),
            None => Ok(self.file_get(server)),
        }
    }

    /// From `auths`: the exact key, else the first key with the same host name.
    fn file_get(&self, server: &str) -> AuthConfig {
        let Some(auths) = self.auths() else {
            return AuthConfig::default();
        };
        let entry = auths.get(server).or_else(|| {
            let host = hostname(server);
            auths
                .iter()
                .find(|(k, _)| hostname(k) == host)
                .map(|(_, v)| v)
        });
        let Some(entry) = entry else {
            return AuthConfig::default();
        };
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let mut a = AuthConfig {
            username: field("username"),
            password: field("password"),
            serveraddress: server.to_string(),
            identitytoken: field("identitytoken"),
        };
        let auth = field("auth");
        if !auth.is_empty() {
            if let Some((u, p)) = decode_auth(&auth) {
                a.username = u;
                a.password = p;
            }
        }
        a
    }

    /// Stores `auth` for `auth.serveraddress`: through the helper, or in `auths` (then
    /// [`ConfigFile::save`] writes it).
    pub fn store(&mut self, auth: &AuthConfig) -> Result<()> {
        let server = auth.serveraddress.clone();
        if let Some(h) = self.helper_for(&server) {
            helper_store(&h, auth)?;
            // As docker: the file keeps an empty entry, so `auths` lists the registry.
            self.auths_mut().insert(server, Value::Object(Map::new()));
            return self.save();
        }
        let mut entry = Map::new();
        if !auth.username.is_empty() || !auth.password.is_empty() {
            let raw = format!("{}:{}", auth.username, auth.password);
            entry.insert(
                "auth".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
            );
        }
        if !auth.identitytoken.is_empty() {
            entry.insert(
                "identitytoken".into(),
                Value::String(auth.identitytoken.clone()),
            );
        }
        self.auths_mut().insert(server, Value::Object(entry));
        self.save()
    }

    /// Removes the credentials for `server`: through its helper, and from `auths`.
    pub fn erase(&mut self, server: &str) -> Result<()> {
        let helper = self.helper_for(server);
        let removed = self
            .doc
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .and_then(|a| a.remove(server))
            .is_some();
        if removed {
            self.save()?;
        }
        match helper {
            Some(h) => helper_erase(&h, server),
            None => Ok(()),
        }
    }
}

/// base64(`user:password`) → (user, password).
fn decode_auth(auth: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let raw = STANDARD
        .decode(auth.trim())
        .or_else(|_| STANDARD_NO_PAD.decode(auth.trim()))
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.trim_end_matches('\0').to_string()))
}

/// What helpers print when they hold nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Runs `docker-credential-<helper> action` with `input` on stdin: its stdout, or
/// docker's error wording.
fn run_helper(
    helper: &str,
    action: &str,
    input: &[u8],
) -> Result<std::result::Result<String, String>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("exec: \"{program}\": executable file not found in $PATH")
            } else {
                format!("exec: \"{program}\": {e}")
            };
            let verb = match action {
                "get" => "getting",
                "store" => "storing",
                _ => "erasing",
            };
            Error::msg(format!("error {verb} credentials - err: {why}, out: ``"))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(Ok(text))
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Ok(Err(if text.is_empty() { err } else { text }))
    }
}

#[derive(Serialize, Deserialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The user name helpers store an identity token under.
const TOKEN_USER: &str = "<token>";

fn helper_get(helper: &str, server: &str) -> Result<AuthConfig> {
    match run_helper(helper, "get", server.as_bytes())? {
        Ok(out) => {
            let c: HelperCreds = serde_json::from_str(&out).map_err(|e| {
                Error::msg(format!(
                    "error getting credentials - err: {e}, out: `{out}`"
                ))
            })?;
            let mut a = AuthConfig {
                serveraddress: server.to_string(),
                ..AuthConfig::default()
            };
            if c.username == TOKEN_USER {
                a.identitytoken = c.secret;
            } else {
                a.username = c.username;
                a.password = c.secret;
            }
            Ok(a)
        }
        Err(out) if out.contains(NOT_FOUND) => Ok(AuthConfig {
            serveraddress: server.to_string(),
            ..AuthConfig::default()
        }),
        Err(out) => Err(Error::msg(format!(
            "error getting credentials - err: exit status 1, out: `{out}`"
        ))),
    }
}

fn helper_store(helper: &str, auth: &AuthConfig) -> Result<()> {
    let c = if auth.identitytoken.is_empty() {
        HelperCreds {
            server_url: auth.serveraddress.clone(),
            username: auth.username.clone(),
            secret: auth.password.clone(),
        }
    } else {
        HelperCreds {
            server_url: auth.serveraddress.clone(),
            username: TOKEN_USER.to_string(),
            secret: auth.identitytoken.clone(),
        }
    };
    match run_helper(helper, "store", &serde_json::to_vec(&c)?)? {
        Ok(_) => Ok(()),
        Err(out) => Err(Error::msg(format!(
            "error storing credentials - err: exit status 1, out: `{out}`"
        ))),
    }
}

fn helper_erase(helper: &str, server: &str) -> Result<()> {
    match run_helper(helper, "erase", server.as_bytes())? {
        Ok(_) => Ok(()),
        Err(out) => Err(Error::msg(format!(
            "error erasing credentials - err: exit status 1, out: `{out}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn header_is_base64url_json() {
        let a = AuthConfig {
            username: "alice".into(),
            password: "s3cret?>".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..AuthConfig::default()
        };
        let h = a.to_header();
        assert!(!h.contains('+') && !h.contains('/'));
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(&h)
            .unwrap();
        let back: AuthConfig = serde_json::from_slice(&raw).unwrap();
        assert_eq!(back, a);
        assert_eq!(AuthConfig::default().to_header(), "e30=");
        assert_eq!(hostname("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(hostname("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn file_store_round_trip_keeps_other_keys_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_dir = dir.path().join("cfg");
        std::fs::create_dir(&cfg_dir).unwrap();
        std::fs::write(
            cfg_dir.join("config.json"),
            r#"{"psFormat": "table {{.ID}}", "auths": {"other.io": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        let mut c = ConfigFile::load(&cfg_dir).unwrap();
        assert!(c.get("127.0.0.1:5000").unwrap().is_empty());
        c.store(&AuthConfig {
            username: "alice".into(),
            password: "pa:ss".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..AuthConfig::default()
        })
        .unwrap();
        let path = cfg_dir.join("config.json");
        assert_eq!(mode(&path), 0o600);
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table {{.ID}}");
        assert_eq!(doc["auths"]["other.io"]["auth"], "eDp5");
        // base64("alice:pa:ss"), no plain user or password in the file.
        assert_eq!(doc["auths"]["127.0.0.1:5000"]["auth"], "YWxpY2U6cGE6c3M=");
        assert_eq!(doc["auths"]["127.0.0.1:5000"].as_object().unwrap().len(), 1);

        let c = ConfigFile::load(&cfg_dir).unwrap();
        let a = c.get("127.0.0.1:5000").unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.as_str()),
            ("alice", "pa:ss")
        );
        // Looked up by host name too, as docker does.
        assert_eq!(
            c.get("http://127.0.0.1:5000/v2/").unwrap().username,
            "alice"
        );
        assert_eq!(c.get("other.io").unwrap().username, "x");

        let mut c = c;
        c.erase("127.0.0.1:5000").unwrap();
        let c = ConfigFile::load(&cfg_dir).unwrap();
        assert!(c.get("127.0.0.1:5000").unwrap().is_empty());
        assert_eq!(c.get("other.io").unwrap().password, "y");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn new_file_in_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_dir = dir.path().join("a/b");
        let mut c = ConfigFile::load(&cfg_dir).unwrap();
        c.store(&AuthConfig {
            identitytoken: "tok".into(),
            username: "bob".into(),
            serveraddress: "https://index.docker.io/v1/".into(),
            ..AuthConfig::default()
        })
        .unwrap();
        assert_eq!(mode(&cfg_dir.join("config.json")), 0o600);
        assert_eq!(mode(&cfg_dir), 0o700);
        let a = ConfigFile::load(&cfg_dir)
            .unwrap()
            .get("https://index.docker.io/v1/")
            .unwrap();
        assert_eq!(a.identitytoken, "tok");
        assert_eq!(a.username, "bob");
    }

    /// One test changes PATH (process-wide), so the helper cases run in it in turn.
    #[test]
    fn credential_helpers_by_store_and_by_registry() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&db).unwrap();
        // A helper keeping one file per server (the server's name hex-encoded).
        let script = format!(
            r#"#!/bin/sh
set -e
db={db}
key() {{ printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }}
case "$1" in
store) input=$(cat); server=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf '%s' "$input" > "$db/$(key "$server")";;
get) server=$(cat); f="$db/$(key "$server")"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
erase) server=$(cat); f="$db/$(key "$server")"; if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
*) exit 2;;
esac
"#,
            db = db.display()
        );
        let helper = bin.join("docker-credential-test");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::set_var("PATH", format!("{}:{path}", bin.display()));

        let cfg_dir = dir.path().join("cfg");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::write(
            cfg_dir.join("config.json"),
            r#"{"credsStore": "test", "credHelpers": {"nohelper.io": "absent"}}"#,
        )
        .unwrap();
        let mut c = ConfigFile::load(&cfg_dir).unwrap();
        assert_eq!(c.helper_for("127.0.0.1:5000").as_deref(), Some("test"));
        assert_eq!(c.helper_for("nohelper.io").as_deref(), Some("absent"));
        assert!(c.get("127.0.0.1:5000").unwrap().is_empty());
        c.store(&AuthConfig {
            username: "alice".into(),
            password: "s3cret".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..AuthConfig::default()
        })
        .unwrap();
        // The secret went to the helper; the file has only an empty entry.
        let text = std::fs::read_to_string(cfg_dir.join("config.json")).unwrap();
        assert!(
            !text.contains("s3cret") && !text.contains("\"auth\""),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["auths"]["127.0.0.1:5000"], serde_json::json!({}));
        assert_eq!(mode(&cfg_dir.join("config.json")), 0o600);
        assert_eq!(std::fs::read_dir(&db).unwrap().count(), 1);

        let c2 = ConfigFile::load(&cfg_dir).unwrap();
        let a = c2.get("127.0.0.1:5000").unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.as_str()),
            ("alice", "s3cret")
        );

        // An identity token travels as user "<token>".
        c.store(&AuthConfig {
            identitytoken: "tok123".into(),
            serveraddress: "https://index.docker.io/v1/".into(),
            ..AuthConfig::default()
        })
        .unwrap();
        let a = c.get("https://index.docker.io/v1/").unwrap();
        assert_eq!(a.identitytoken, "tok123");
        assert!(a.username.is_empty());

        c.erase("127.0.0.1:5000").unwrap();
        assert!(c.get("127.0.0.1:5000").unwrap().is_empty());
        assert!(c.erase("127.0.0.1:5000").is_err(), "nothing left to erase");
        let doc: Value =
            serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
        assert!(doc["auths"].get("127.0.0.1:5000").is_none());

        // credHelpers wins over credsStore; a helper that is not installed is an error.
        let e = c.get("nohelper.io").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-absent") && e.contains("not found"),
            "{e}"
        );
    }
}
