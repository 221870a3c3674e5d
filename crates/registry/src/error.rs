//! The registry client's errors, each with a message a user can act on.

use std::io;

use image::Digest;

/// What can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the caller (a malformed server address, header, platform, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// The registry may only be reached over https with a verified certificate, and that
    /// failed; names the registry and how to allow it.
    #[error(
        "registry {registry}: TLS failure: {message}; to trust this registry, put its CA \
         certificate in {certs_dir}/{registry}/ca.crt, or list \"{registry}\" in \
         \"insecure-registries\" in daemon.json"
    )]
    Tls {
        /// The registry (`host:port`).
        registry: String,
        /// What the TLS layer said.
        message: String,
        /// The certs.d directory in force.
        certs_dir: String,
    },
    /// A TLS configuration file in certs.d could not be used.
    #[error("registry {registry}: bad TLS configuration in {path}: {message}")]
    TlsConfig {
        /// The registry (`host:port`).
        registry: String,
        /// The offending file or directory.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The registry could not be reached.
    #[error("registry {registry}: cannot connect: {source}")]
    Connect {
        /// The registry (`host:port`).
        registry: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The connection failed after it was made (reset, closed, protocol error).
    #[error("registry {registry}: {message}")]
    Transport {
        /// The registry (`host:port`).
        registry: String,
        /// What failed.
        message: String,
    },
    /// A response body broke off (connection reset or closed mid-body).
    #[error("{what}: the transfer broke off: {message}")]
    Interrupted {
        /// What was being read.
        what: String,
        /// The underlying error.
        message: String,
    },
    /// The registry did not answer in time.
    #[error("registry {registry}: timed out after {seconds} s")]
    Timeout {
        /// The registry (`host:port`).
        registry: String,
        /// The timeout.
        seconds: u64,
    },
    /// The registry answered with an error status; `message` carries its
    /// `errors[].message` (or the body's first line).
    #[error("{}", http_message(*status, code, message, url))]
    Http {
        /// The HTTP status.
        status: u16,
        /// The first `errors[].code` of the registry's JSON, if any (`MANIFEST_UNKNOWN`).
        code: Option<String>,
        /// The registry's messages, joined by "; ".
        message: String,
        /// The URL requested.
        url: String,
    },
    /// The credentials were refused (or none were given where needed).
    #[error("registry {registry}: unauthorized: {message}")]
    Unauthorized {
        /// The registry (`host:port`).
        registry: String,
        /// The registry's message, or what was missing.
        message: String,
        /// The registry's error code (`UNAUTHORIZED`, `DENIED`), when it gave one.
        code: Option<String>,
    },
    /// A 401 without a challenge berth can answer (no `WWW-Authenticate`, or an unknown
    /// scheme).
    #[error(
        "registry {registry}: unauthorized, and the registry offers no usable way to \
         authenticate (WWW-Authenticate: {challenge:?})"
    )]
    NoUsableChallenge {
        /// The registry (`host:port`).
        registry: String,
        /// The `WWW-Authenticate` header as sent, empty when absent.
        challenge: String,
    },
    /// Content did not hash to its digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A blob ended before its declared size.
    #[error("truncated blob {digest}: expected {expected} bytes, got {received}")]
    Truncated {
        /// The blob.
        digest: Digest,
        /// The size declared by its descriptor.
        expected: u64,
        /// The bytes received before the end.
        received: u64,
    },
    /// A blob or manifest is larger than declared or allowed.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The size it may not exceed.
        limit: u64,
    },
    /// A manifest's media type is not one berth can pull, or disagrees with its body.
    #[error("unexpected media type {media_type:?}: {reason}")]
    UnexpectedMediaType {
        /// The media type received.
        media_type: String,
        /// Why it is refused.
        reason: String,
    },
    /// No entry of a manifest list/index fits the wanted platform.
    #[error(
        "no matching manifest for {platform} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform {
        /// The wanted platform.
        platform: String,
        /// The platforms the list offers.
        available: String,
    },
    /// A redirect pointed back to a URL already visited.
    #[error("redirect loop at {url}")]
    RedirectLoop {
        /// The URL seen twice.
        url: String,
    },
    /// More redirects than allowed.
    #[error("too many redirects (more than {limit}) from {url}")]
    TooManyRedirects {
        /// The first URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The registry's answer could not be understood.
    #[error("registry {registry}: invalid response: {message}")]
    InvalidResponse {
        /// The registry (`host:port`).
        registry: String,
        /// What was wrong.
        message: String,
    },
    /// A local I/O error (reading an upload source, certs.d).
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn http_message(status: u16, code: &Option<String>, message: &str, url: &str) -> String {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    match (code, message.is_empty()) {
        (_, true) => format!("{url}: HTTP {status} {reason}"),
        (Some(c), false) => format!(
            "{}: {message} (HTTP {status} {reason}, {url})",
            c.to_lowercase().replace('_', " ")
        ),
        (None, false) => format!("{message} (HTTP {status} {reason}, {url})"),
    }
}

impl Error {
    /// The HTTP status, when the registry answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::Unauthorized { .. } | Error::NoUsableChallenge { .. } => Some(401),
            _ => None,
        }
    }

    /// True for "not found": an unknown manifest, blob, tag or repository.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Http { status: 404, .. })
    }

    /// True for a failure of authentication or authorization (401, 403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Unauthorized { .. }
                | Error::NoUsableChallenge { .. }
                | Error::Http { status: 403, .. }
        )
    }

    /// True when the content itself was bad (digest, size, media type): retrying the
    /// same source will not help.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Error::DigestMismatch { .. }
                | Error::Truncated { .. }
                | Error::TooLarge { .. }
                | Error::UnexpectedMediaType { .. }
        )
    }

    /// Recovers a registry error carried inside an `io::Error` (as [`crate::BlobReader`]'s
    /// `AsyncRead` reports them), or wraps the I/O error.
    pub fn from_io(e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(Ok(err)) = e.into_inner().map(|b| b.downcast::<Error>()) {
                return *err;
            }
            return Error::Io(io::Error::other("registry: lost I/O error"));
        }
        Error::Io(e)
    }

    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Error::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// Parses the registry error JSON `{"errors":[{"code":..,"message":..}]}`: the first code
/// and the messages joined; falls back to the body's first line.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        if !e.errors.is_empty() {
            let code = e.errors.iter().find_map(|i| i.code.clone());
            let msg = e
                .errors
                .iter()
                .filter_map(|i| i.message.clone().or_else(|| i.code.clone()))
                .collect::<Vec<_>>()
                .join("; ");
            return (code, msg);
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    (None, line.chars().take(200).collect())
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
