//! The client: endpoints and auth per registry, and the operations on a repository.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, LINK, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use hyper::{Method, Response, StatusCode};
use image::digest::Hasher;
use image::{Digest, ImageRef};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::auth::{
    basic_header, parse_www_authenticate, query_escape, Challenge, Credentials, TokenCache,
    TokenResponse,
};
use crate::blob::{BlobReader, ReaderBody, Resumer};
use crate::error::{parse_error_body, Error, Result};
use crate::manifest::{
    detect_media_type, Descriptor, ImageIndex, ImageManifest, Manifest, Platform, RawManifest,
    DOCKER_MANIFEST, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, OCI_MANIFEST,
};
use crate::policy::{registry_host, split_host_port, Policy, RegistryConfig, DOCKER_HUB};
use crate::tls::TlsConfigs;
use crate::transport::{ReqBody, Target, Transport, Url};

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A registry client: configuration, connection pool, decided endpoints, challenges and
/// cached tokens. Cheap to clone and shareable across tasks; all methods are async and
/// must run inside a tokio runtime (sync code calls them with `Handle::block_on` from a
/// blocking thread).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistryConfig,
    policy: Policy,
    tls: TlsConfigs,
    transport: Transport,
    tokens: TokenCache,
    remotes: Mutex<HashMap<String, Remote>>,
    challenges: Mutex<HashMap<String, Challenge>>,
}

/// One way to reach a registry (or mirror).
#[derive(Clone)]
struct Remote {
    base: Url,
    target: Target,
}

/// What [`Repository::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had it (`HEAD` answered 200).
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A reference resolved to an image manifest for one platform.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What the tag or digest points to: an index or the image manifest itself. Its
    /// digest is the repository digest (`RepoDigests`, "Digest:" of `docker pull`).
    pub top: RawManifest,
    /// The index, when `top` is one.
    pub index: Option<ImageIndex>,
    /// The image manifest chosen (equal to `top` when there is no index).
    pub raw: RawManifest,
    /// `raw`, parsed.
    pub manifest: ImageManifest,
}

/// The result of [`Client::login`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOutcome {
    /// A refresh token the token server issued, to store instead of the password
    /// (`IdentityToken` in the Engine API's answer).
    pub identity_token: Option<String>,
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidInput(format!("invalid {name} value {value:?}")))?;
    Ok((HeaderName::from_static(name), v))
}

async fn read_body(resp: Response<Incoming>, limit: usize, what: &str) -> Result<Bytes> {
    match Limited::new(resp.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::TooLarge {
            what: what.to_string(),
            limit: limit as u64,
        }),
        Err(e) => Err(Error::Interrupted {
            what: what.to_string(),
            message: e.to_string(),
        }),
    }
}

async fn error_from(resp: Response<Incoming>, url: &Url) -> Error {
    let status = resp.status().as_u16();
    let body = read_body(resp, ERROR_BODY_LIMIT, "error body")
        .await
        .unwrap_or_default();
    let (code, message) = parse_error_body(&body);
    Error::Http {
        status,
        code,
        message,
        url: url.to_string(),
    }
}

fn location(resp: &Response<Incoming>, base: &Url, registry: &str) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::InvalidResponse {
            registry: registry.to_string(),
            message: format!("{} answer without a Location header", resp.status()),
        })?;
    base.join(loc)
}

fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let sep = if url.path.contains('?') { '&' } else { '?' };
    url.with_path(&format!("{}{sep}{key}={}", url.path, query_escape(value)))
}

impl Client {
    /// A client with `config` (certs.d, insecure registries, mirrors, timeouts).
    pub fn new(config: RegistryConfig) -> Result<Client> {
        let policy = Policy::new(&config)?;
        let certs_dir = config.certs_dir.display().to_string();
        Ok(Client {
            inner: Arc::new(Inner {
                tls: TlsConfigs::new(config.certs_dir.clone()),
                transport: Transport::new(
                    config.connect_timeout,
                    config.response_timeout,
                    config.max_redirects,
                    &config.user_agent,
                    certs_dir,
                ),
                policy,
                config,
                tokens: TokenCache::default(),
                remotes: Mutex::new(HashMap::new()),
                challenges: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// A handle on the repository of `image` (its tag and digest are ignored), using
    /// `credentials`, for pulling; see [`Repository::for_push`].
    pub fn repository(&self, image: &ImageRef, credentials: Credentials) -> Repository {
        Repository {
            client: self.clone(),
            domain: image.domain().to_string(),
            name: image.repository().to_string(),
            credentials,
            push: false,
        }
    }

    /// Resolves `image` (its digest if it has one, else its tag) to the image manifest
    /// for `platform`.
    pub async fn resolve(
        &self,
        image: &ImageRef,
        credentials: Credentials,
        platform: &Platform,
    ) -> Result<Resolved> {
        let reference = match (image.digest(), image.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => image::reference::DEFAULT_TAG.to_string(),
        };
        self.repository(image, credentials)
            .resolve(&reference, platform)
            .await
    }

    /// Checks `credentials` against `server`'s `/v2/` as `docker login` does (`server`
    /// as the user typed it: `localhost:5000`, `https://index.docker.io/v1/`).
    pub async fn login(&self, server: &str, credentials: &Credentials) -> Result<LoginOutcome> {
        let domain = crate::policy::normalize_server(server);
        let remote = self.remote(&domain).await?;
        let ping = remote.base.with_path("/v2/");
        let mut body = ReqBody::Empty;
        let (resp, _) = self
            .inner
            .transport
            .send(
                Method::GET,
                &ping,
                HeaderMap::new(),
                &mut body,
                &remote.target,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => return Ok(LoginOutcome::default()),
            StatusCode::UNAUTHORIZED => {}
            _ => return Err(error_from(resp, &ping).await),
        }
        let challenge = pick_challenge(&resp, &remote.target.registry)?;
        self.remember_challenge(&remote, &challenge);
        let (auth, identity_token) = match challenge.scheme.as_str() {
            "basic" => match credentials {
                Credentials::Basic { username, password } => {
                    (basic_header(username, password), None)
                }
                _ => {
                    return Err(Error::Unauthorized {
                        registry: remote.target.registry.clone(),
                        message: "the registry wants a user name and password".into(),
                        code: None,
                    })
                }
            },
            _ => {
                let (token, refresh) = self
                    .fetch_token(&remote, &challenge, &[], credentials, true)
                    .await?;
                (format!("Bearer {}", token.value), refresh)
            }
        };
        let mut headers = HeaderMap::new();
        let v = HeaderValue::from_str(&auth)
            .map_err(|_| Error::InvalidInput("credentials are not a valid header".into()))?;
        headers.insert(AUTHORIZATION, v);
        let (resp, _) = self
            .inner
            .transport
            .send(Method::GET, &ping, headers, &mut body, &remote.target)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(LoginOutcome { identity_token }),
            StatusCode::UNAUTHORIZED => {
                let b = read_body(resp, ERROR_BODY_LIMIT, "error body")
                    .await
                    .unwrap_or_default();
                let (code, m) = parse_error_body(&b);
                Err(Error::Unauthorized {
                    registry: remote.target.registry.clone(),
                    message: if m.is_empty() {
                        "incorrect username or password".into()
                    } else {
                        m
                    },
                    code,
                })
            }
            _ => Err(error_from(resp, &ping).await),
        }
    }

    /// Decides how to reach a registry (Docker's endpoint lookup): https verified for
    /// secure registries; https unverified then plain http for insecure ones.
    async fn remote(&self, domain: &str) -> Result<Remote> {
        let host = registry_host(domain).to_string();
        if let Some(r) = self
            .inner
            .remotes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host)
        {
            return Ok(r.clone());
        }
        let mut addrs: Vec<IpAddr> = Vec::new();
        if self.inner.policy.needs_lookup(&host) {
            let (h, port) = split_host_port(&host);
            if let Ok(it) = tokio::net::lookup_host((h, port.unwrap_or(443))).await {
                addrs.extend(it.map(|a| a.ip()));
            }
        }
        let insecure = self.inner.policy.is_insecure(&host, &addrs);
        let https = Url::parse(&format!("https://{host}/"))?;
        let remote = if !insecure {
            Remote {
                base: https,
                target: Target {
                    registry: host.clone(),
                    tls: self.inner.tls.get(&host, true)?,
                    secure: true,
                },
            }
        } else {
            let target = Target {
                registry: host.clone(),
                tls: self.inner.tls.get(&host, false)?,
                secure: false,
            };
            let tls_remote = Remote {
                base: https,
                target,
            };
            let ping = tls_remote.base.with_path("/v2/");
            let mut body = ReqBody::Empty;
            match self
                .inner
                .transport
                .send(
                    Method::GET,
                    &ping,
                    HeaderMap::new(),
                    &mut body,
                    &tls_remote.target,
                )
                .await
            {
                Ok((resp, _)) => {
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        if let Ok(c) = pick_challenge(&resp, &host) {
                            self.remember_challenge(&tls_remote, &c);
                        }
                    }
                    tls_remote
                }
                Err(Error::Timeout { .. })
                | Err(Error::Connect { .. })
                | Err(Error::Transport { .. }) => Remote {
                    base: Url::parse(&format!("http://{host}/"))?,
                    target: tls_remote.target,
                },
                Err(e) => return Err(e),
            }
        };
        self.inner
            .remotes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host, remote.clone());
        Ok(remote)
    }

    /// The endpoints for a pull: the mirrors first for Docker Hub, then the registry.
    async fn pull_remotes(&self, domain: &str) -> Result<Vec<Remote>> {
        let mut out = Vec::new();
        if domain == DOCKER_HUB {
            for m in &self.inner.config.registry_mirrors {
                let Ok(base) = Url::parse(m.trim_end_matches('/')) else {
                    continue;
                };
                let registry = base.authority();
                let Ok(tls) = self.inner.tls.get(&registry, base.https) else {
                    continue;
                };
                out.push(Remote {
                    base: base.with_path("/"),
                    target: Target {
                        registry,
                        tls,
                        secure: base.https,
                    },
                });
            }
        }
        out.push(self.remote(domain).await?);
        Ok(out)
    }

    fn remember_challenge(&self, remote: &Remote, c: &Challenge) {
        self.inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(remote.base.origin(), c.clone());
    }

    fn challenge_for(&self, remote: &Remote) -> Option<Challenge> {
        self.inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&remote.base.origin())
            .cloned()
    }

    /// Fetches a token from the challenge's realm for `scopes`.
    async fn fetch_token(
        &self,
        remote: &Remote,
        challenge: &Challenge,
        scopes: &[String],
        credentials: &Credentials,
        offline: bool,
    ) -> Result<(crate::auth::Token, Option<String>)> {
        let registry = &remote.target.registry;
        let realm = challenge
            .param("realm")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::NoUsableChallenge {
                registry: registry.clone(),
                challenge: "Bearer without realm".into(),
            })?;
        let realm_url = Url::parse(realm).map_err(|_| Error::InvalidResponse {
            registry: registry.clone(),
            message: format!("token realm {realm:?} is not an http(s) URL"),
        })?;
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(s) = challenge.param("service") {
            params.push(("service", s.to_string()));
        }
        for s in scopes {
            params.push(("scope", s.clone()));
        }
        let mut headers = HeaderMap::new();
        let (method, url, mut body) = match credentials {
            Credentials::IdentityToken(t) => {
                params.push(("grant_type", "refresh_token".into()));
                params.push(("refresh_token", t.clone()));
                params.push(("client_id", "docker".into()));
                if offline {
                    params.push(("access_type", "offline".into()));
                }
                let form = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", query_escape(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (Method::POST, realm_url, ReqBody::Bytes(Bytes::from(form)))
            }
            other => {
                if let Some(b) = other.basic_header() {
                    let v = HeaderValue::from_str(&b).map_err(|_| {
                        Error::InvalidInput("credentials are not a valid header".into())
                    })?;
                    headers.insert(AUTHORIZATION, v);
                    if offline {
                        params.push(("offline_token", "true".into()));
                        params.push(("client_id", "docker".into()));
                    }
                }
                let mut url = realm_url;
                for (k, v) in &params {
                    url = with_query(&url, k, v);
                }
                (Method::GET, url, ReqBody::Empty)
            }
        };
        let (resp, url) = self
            .inner
            .transport
            .send(method, &url, headers, &mut body, &remote.target)
            .await?;
        match resp.status() {
            s if s.is_success() => {
                let b = read_body(resp, 1 << 20, "token response").await?;
                let t: TokenResponse =
                    serde_json::from_slice(&b).map_err(|e| Error::InvalidResponse {
                        registry: registry.clone(),
                        message: format!("token server answer: {e}"),
                    })?;
                t.into_token().ok_or_else(|| Error::InvalidResponse {
                    registry: registry.clone(),
                    message: "the token server returned no token".into(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let b = read_body(resp, ERROR_BODY_LIMIT, "error body")
                    .await
                    .unwrap_or_default();
                let (code, m) = parse_error_body(&b);
                Err(Error::Unauthorized {
                    registry: registry.clone(),
                    message: if m.is_empty() {
                        "incorrect username or password".into()
                    } else {
                        m
                    },
                    code,
                })
            }
            _ => Err(error_from(resp, &url).await),
        }
    }

    fn token_key(
        remote: &Remote,
        credentials: &Credentials,
        scopes: &[String],
    ) -> (String, String) {
        let who = match credentials {
            Credentials::Anonymous => "anon".to_string(),
            Credentials::Basic { username, password } => {
                Digest::sha256_of(format!("b\0{username}\0{password}").as_bytes()).to_string()
            }
            Credentials::IdentityToken(t) => {
                Digest::sha256_of(format!("i\0{t}").as_bytes()).to_string()
            }
            Credentials::RegistryToken(t) => {
                Digest::sha256_of(format!("r\0{t}").as_bytes()).to_string()
            }
        };
        (format!("{}|{who}", remote.base.origin()), scopes.join(" "))
    }

    /// The `Authorization` value for a request, and whether it is fresh (just issued).
    async fn authorization(
        &self,
        remote: &Remote,
        credentials: &Credentials,
        scopes: &[String],
        force_fresh: bool,
    ) -> Result<Option<(HeaderValue, bool)>> {
        let hv = |s: String| {
            HeaderValue::from_str(&s)
                .map_err(|_| Error::InvalidInput("credentials are not a valid header".into()))
        };
        if let Credentials::RegistryToken(t) = credentials {
            return Ok(Some((hv(format!("Bearer {t}"))?, true)));
        }
        let Some(challenge) = self.challenge_for(remote) else {
            return Ok(None);
        };
        match challenge.scheme.as_str() {
            "basic" => match credentials.basic_header() {
                Some(b) => Ok(Some((hv(b)?, true))),
                None => Ok(None),
            },
            _ => {
                let key = Self::token_key(remote, credentials, scopes);
                if !force_fresh {
                    if let Some(t) = self.inner.tokens.get(&key) {
                        return Ok(Some((hv(format!("Bearer {t}"))?, false)));
                    }
                }
                let (token, _) = self
                    .fetch_token(remote, &challenge, scopes, credentials, false)
                    .await?;
                let v = hv(format!("Bearer {}", token.value))?;
                self.inner.tokens.put(key, token);
                Ok(Some((v, true)))
            }
        }
    }

    /// Sends a request with authentication, answering one 401 challenge.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        remote: &Remote,
        credentials: &Credentials,
        scopes: &[String],
        method: Method,
        url: &Url,
        headers: HeaderMap,
        mut body: ReqBody,
    ) -> Result<(Response<Incoming>, Url)> {
        let registry = &remote.target.registry;
        let mut force_fresh = false;
        for attempt in 0..3 {
            let auth = self
                .authorization(remote, credentials, scopes, force_fresh)
                .await?;
            let mut h = headers.clone();
            if let Some((v, _)) = &auth {
                h.insert(AUTHORIZATION, v.clone());
            }
            let (resp, final_url) = self
                .inner
                .transport
                .send(method.clone(), url, h, &mut body, &remote.target)
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok((resp, final_url));
            }
            let challenge = pick_challenge(&resp, registry)?;
            let known = self.challenge_for(remote);
            self.remember_challenge(remote, &challenge);
            let unauthorized = |code: Option<String>, m: String| Error::Unauthorized {
                registry: registry.clone(),
                message: if m.is_empty() {
                    "authentication required".into()
                } else {
                    m
                },
                code,
            };
            let retry = match (&auth, challenge.scheme.as_str()) {
                // First contact: now that the challenge is known, authenticate.
                (None, "bearer") => known.is_none(),
                (None, _) => known.is_none() && !credentials.is_anonymous(),
                // A cached token that no longer works: get a fresh one.
                (Some((_, false)), _) => {
                    force_fresh = true;
                    true
                }
                (Some((_, true)), _) => false,
            };
            if !retry || attempt == 2 || !body.replayable() {
                let b = read_body(resp, ERROR_BODY_LIMIT, "error body")
                    .await
                    .unwrap_or_default();
                let (code, m) = parse_error_body(&b);
                return Err(unauthorized(code, m));
            }
        }
        Err(Error::Unauthorized {
            registry: registry.clone(),
            message: "authentication failed".into(),
            code: None,
        })
    }
}

/// The challenge to answer: bearer over basic; an error when there is none usable.
fn pick_challenge(resp: &Response<Incoming>, registry: &str) -> Result<Challenge> {
    let raw: Vec<String> = resp
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let all: Vec<Challenge> = raw.iter().flat_map(|v| parse_www_authenticate(v)).collect();
    all.iter()
        .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()))
        .or_else(|| all.iter().find(|c| c.scheme == "basic"))
        .cloned()
        .ok_or_else(|| Error::NoUsableChallenge {
            registry: registry.to_string(),
            challenge: raw.join(", "),
        })
}

/// A repository on a registry, with the credentials to use; from [`Client::repository`].
#[derive(Clone)]
pub struct Repository {
    client: Client,
    domain: String,
    name: String,
    credentials: Credentials,
    push: bool,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({}/{})", self.domain, self.name)
    }
}

impl Repository {
    /// The same repository, asking for push access (`repository:<name>:pull,push`).
    pub fn for_push(mut self) -> Repository {
        self.push = true;
        self
    }

    /// The repository path (`library/busybox`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn scopes(&self) -> Vec<String> {
        let actions = if self.push { "pull,push" } else { "pull" };
        vec![format!("repository:{}:{actions}", self.name)]
    }

    async fn remotes(&self) -> Result<Vec<Remote>> {
        if self.push {
            Ok(vec![self.client.remote(&self.domain).await?])
        } else {
            self.client.pull_remotes(&self.domain).await
        }
    }

    fn url(&self, remote: &Remote, tail: &str) -> Url {
        remote.base.with_path(&format!("/v2/{}/{tail}", self.name))
    }

    async fn send(
        &self,
        remote: &Remote,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: ReqBody,
        extra_scope: Option<String>,
    ) -> Result<(Response<Incoming>, Url)> {
        let mut scopes = self.scopes();
        scopes.extend(extra_scope);
        self.client
            .request(
                remote,
                &self.credentials,
                &scopes,
                method,
                url,
                headers,
                body,
            )
            .await
    }

    /// Tries each endpoint (mirrors first) until one succeeds; content errors and
    /// "not found" from the last endpoint are reported as they are.
    async fn on_remotes<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Remote) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let remotes = self.remotes().await?;
        let mut last = None;
        for r in remotes {
            match f(r).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_content() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidInput("no endpoint".into())))
    }

    /// Fetches the manifest `reference` (a tag or digest) as served, checking its digest
    /// (against the reference or the `Docker-Content-Digest` header) and media type.
    pub async fn fetch_manifest(&self, reference: &str) -> Result<RawManifest> {
        self.on_remotes(|r| async move { self.fetch_manifest_from(&r, reference).await })
            .await
    }

    async fn fetch_manifest_from(&self, remote: &Remote, reference: &str) -> Result<RawManifest> {
        let by_digest = Digest::parse(reference).ok();
        let url = self.url(remote, &format!("manifests/{reference}"));
        let mut headers = HeaderMap::new();
        for a in MANIFEST_ACCEPT {
            headers.append(ACCEPT, HeaderValue::from_static(a));
        }
        let (resp, final_url) = self
            .send(remote, Method::GET, &url, headers, ReqBody::Empty, None)
            .await?;
        if !resp.status().is_success() {
            return Err(error_from(resp, &final_url).await);
        }
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_digest = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let bytes = read_body(
            resp,
            MAX_MANIFEST_SIZE as usize,
            &format!("manifest {reference}"),
        )
        .await?;
        let expected = by_digest.or(header_digest);
        let alg = expected
            .as_ref()
            .map(|d| d.algorithm())
            .unwrap_or(image::digest::Algorithm::Sha256);
        let mut h = Hasher::new(alg);
        h.update(&bytes);
        let digest = h.finish();
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::DigestMismatch {
                    expected: e,
                    actual: digest,
                });
            }
        }
        let media_type = detect_media_type(ct.as_deref(), &bytes)?;
        Ok(RawManifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// `HEAD` of a manifest: its descriptor, or `None` when the registry does not have it.
    pub async fn head_manifest(&self, reference: &str) -> Result<Option<Descriptor>> {
        self.on_remotes(|r| async move {
            let url = self.url(&r, &format!("manifests/{reference}"));
            let mut headers = HeaderMap::new();
            for a in MANIFEST_ACCEPT {
                headers.append(ACCEPT, HeaderValue::from_static(a));
            }
            let (resp, final_url) = self
                .send(&r, Method::HEAD, &url, headers, ReqBody::Empty, None)
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(error_from(resp, &final_url).await);
            }
            let h = resp.headers();
            let digest = h
                .get(DOCKER_CONTENT_DIGEST)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok())
                .ok_or_else(|| Error::InvalidResponse {
                    registry: r.target.registry.clone(),
                    message: "manifest HEAD without Docker-Content-Digest".into(),
                })?;
            let size = h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let media_type = h
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            Ok(Some(Descriptor {
                media_type,
                digest,
                size,
                platform: None,
                urls: None,
                annotations: None,
                artifact_type: None,
            }))
        })
        .await
    }

    /// Resolves `reference` (tag or digest) to the image manifest for `platform`,
    /// following a manifest list / index.
    pub async fn resolve(&self, reference: &str, platform: &Platform) -> Result<Resolved> {
        let top = self.fetch_manifest(reference).await?;
        match top.parse()? {
            Manifest::Image(m) => Ok(Resolved {
                raw: top.clone(),
                top,
                index: None,
                manifest: m,
            }),
            Manifest::Index(idx) => {
                let d = idx.select(platform)?.clone();
                if d.size > MAX_MANIFEST_SIZE {
                    return Err(Error::TooLarge {
                        what: format!("manifest {}", d.digest),
                        limit: MAX_MANIFEST_SIZE,
                    });
                }
                let raw = self.fetch_manifest(d.digest.as_str()).await?;
                if raw.bytes.len() as u64 != d.size {
                    return Err(Error::Truncated {
                        digest: d.digest.clone(),
                        expected: d.size,
                        received: raw.bytes.len() as u64,
                    });
                }
                match raw.parse()? {
                    Manifest::Image(m) => Ok(Resolved {
                        top,
                        index: Some(idx),
                        raw,
                        manifest: m,
                    }),
                    Manifest::Index(_) => Err(Error::UnexpectedMediaType {
                        media_type: raw.media_type,
                        reason: "an index entry for a platform must be an image manifest".into(),
                    }),
                }
            }
        }
    }

    /// The size of blob `digest` when the registry has it (`HEAD`), else `None`.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>> {
        let remote = self.client.remote(&self.domain).await?;
        self.blob_exists_on(&remote, digest).await
    }

    async fn blob_exists_on(&self, remote: &Remote, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(remote, &format!("blobs/{digest}"));
        let (resp, final_url) = self
            .send(
                remote,
                Method::HEAD,
                &url,
                HeaderMap::new(),
                ReqBody::Empty,
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            _ => Err(error_from(resp, &final_url).await),
        }
    }

    /// Opens blob `digest` of `size` bytes for a verified, streamed download.
    pub async fn fetch_blob(&self, digest: &Digest, size: u64) -> Result<BlobReader> {
        self.fetch_blob_at(digest, size, 0, Hasher::new(digest.algorithm()))
            .await
    }

    /// Resumes a download at `offset` (the caller has the first `offset` bytes, and
    /// `prefix` is the hasher fed with them): asks for `Range: bytes=offset-` and copes
    /// with registries that answer the whole blob. The digest is still checked over the
    /// whole blob.
    pub async fn fetch_blob_at(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        prefix: Hasher,
    ) -> Result<BlobReader> {
        if offset > size {
            return Err(Error::InvalidInput(format!(
                "offset {offset} is past the end of blob {digest} ({size} bytes)"
            )));
        }
        if offset == size {
            return Ok(BlobReader::new(
                digest.clone(),
                size,
                offset,
                prefix,
                None,
                0,
                None,
                0,
            ));
        }
        let (remote, body, skip) = self
            .on_remotes(|r| async move {
                let (b, s) = self.open_blob(&r, digest, offset).await?;
                Ok((r, b, s))
            })
            .await?;
        let repo = self.clone();
        let d = digest.clone();
        let resumer: Resumer = Box::new(move |off| {
            let repo = repo.clone();
            let remote = remote.clone();
            let d = d.clone();
            Box::pin(async move { repo.open_blob(&remote, &d, off).await })
        });
        Ok(BlobReader::new(
            digest.clone(),
            size,
            offset,
            prefix,
            Some(body),
            skip,
            Some(resumer),
            self.client.inner.config.blob_resume_attempts,
        ))
    }

    /// Fetches a small blob (a config) whole, verified.
    pub async fn fetch_blob_bytes(&self, digest: &Digest, size: u64) -> Result<Bytes> {
        self.fetch_blob(digest, size).await?.read_all().await
    }

    /// GET of a blob from `offset`: the body and how many of its leading bytes precede
    /// `offset` (when the server ignored the range).
    async fn open_blob(
        &self,
        remote: &Remote,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Incoming, u64)> {
        let url = self.url(remote, &format!("blobs/{digest}"));
        let mut headers = HeaderMap::new();
        if offset > 0 {
            let (_, v) = header("range", &format!("bytes={offset}-"))?;
            headers.insert(RANGE, v);
        }
        let (resp, final_url) = self
            .send(remote, Method::GET, &url, headers, ReqBody::Empty, None)
            .await?;
        match resp.status() {
            StatusCode::OK => Ok((resp.into_body(), offset)),
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match start {
                    Some(s) if s <= offset => Ok((resp.into_body(), offset - s)),
                    _ => Err(Error::InvalidResponse {
                        registry: remote.target.registry.clone(),
                        message: format!(
                            "blob {digest}: bad Content-Range for a request from {offset}"
                        ),
                    }),
                }
            }
            _ => Err(error_from(resp, &final_url).await),
        }
    }

    /// Uploads a blob of `size` bytes read from `source` unless the registry has it
    /// (`HEAD`); with `mount_from` (another repository of the same registry) it tries a
    /// cross-repository mount first. Monolithic or chunked per
    /// [`RegistryConfig::upload_chunk_size`]. The source must hash to `digest`, else the
    /// upload is not committed.
    pub async fn push_blob<R>(
        &self,
        digest: &Digest,
        size: u64,
        source: R,
        mount_from: Option<&str>,
    ) -> Result<BlobPush>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let repo = self.clone().for_push();
        let remote = repo.client.remote(&repo.domain).await?;
        if repo.blob_exists_on(&remote, digest).await?.is_some() {
            return Ok(BlobPush::Exists);
        }
        let mut url = repo.url(&remote, "blobs/uploads/");
        let extra = mount_from.filter(|f| *f != repo.name).map(|from| {
            url = with_query(&with_query(&url, "mount", digest.as_str()), "from", from);
            format!("repository:{from}:pull")
        });
        let (resp, final_url) = repo
            .send(
                &remote,
                Method::POST,
                &url,
                HeaderMap::new(),
                ReqBody::Empty,
                extra.clone(),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED if extra.is_some() => return Ok(BlobPush::Mounted),
            StatusCode::ACCEPTED => {}
            _ => return Err(error_from(resp, &final_url).await),
        }
        let loc = location(&resp, &final_url, &remote.target.registry)?;
        drop(resp);
        match repo.client.inner.config.upload_chunk_size {
            None => {
                repo.upload_monolithic(&remote, loc, digest, size, source, extra)
                    .await?
            }
            Some(chunk) => {
                repo.upload_chunked(&remote, loc, digest, size, source, chunk.max(1), extra)
                    .await?
            }
        }
        Ok(BlobPush::Uploaded)
    }

    /// Uploads in-memory bytes as a blob (configs), skipping it when present.
    pub async fn push_blob_bytes(&self, bytes: Bytes) -> Result<(Digest, BlobPush)> {
        let digest = Digest::sha256_of(&bytes);
        let size = bytes.len() as u64;
        let r = self
            .push_blob(&digest, size, std::io::Cursor::new(bytes), None)
            .await?;
        Ok((digest, r))
    }

    async fn upload_monolithic<R>(
        &self,
        remote: &Remote,
        loc: Url,
        digest: &Digest,
        size: u64,
        source: R,
        extra: Option<String>,
    ) -> Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let url = with_query(&loc, "digest", digest.as_str());
        let body = ReaderBody::new(source, digest.clone(), size).boxed_unsync();
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let (resp, final_url) = self
            .send(
                remote,
                Method::PUT,
                &url,
                headers,
                ReqBody::Stream(body, Some(size)),
                extra,
            )
            .await
            .map_err(local_cause)?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(error_from(resp, &final_url).await);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_chunked<R>(
        &self,
        remote: &Remote,
        mut loc: Url,
        digest: &Digest,
        size: u64,
        mut source: R,
        chunk: usize,
        extra: Option<String>,
    ) -> Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let mut hasher = Hasher::new(digest.algorithm());
        let mut sent: u64 = 0;
        while sent < size {
            let want = usize::try_from(size - sent)
                .unwrap_or(usize::MAX)
                .min(chunk);
            let mut buf = BytesMut::zeroed(want);
            let mut filled = 0;
            while filled < want {
                let n = source.read(&mut buf[filled..]).await?;
                if n == 0 {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "upload source of {digest} ended {} bytes short",
                            size - sent - filled as u64
                        ),
                    )));
                }
                filled += n;
            }
            hasher.update(&buf);
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let (k, v) = header(
                "content-range",
                &format!("{}-{}", sent, sent + want as u64 - 1),
            )?;
            headers.insert(k, v);
            let (resp, final_url) = self
                .send(
                    remote,
                    Method::PATCH,
                    &loc,
                    headers,
                    ReqBody::Bytes(buf.freeze()),
                    extra.clone(),
                )
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(error_from(resp, &final_url).await);
            }
            loc = location(&resp, &final_url, &remote.target.registry)?;
            sent += want as u64;
        }
        let actual = hasher.finish();
        if actual != *digest {
            // Leave the session uncommitted; the registry drops it.
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let url = with_query(&loc, "digest", digest.as_str());
        let (resp, final_url) = self
            .send(
                remote,
                Method::PUT,
                &url,
                HeaderMap::new(),
                ReqBody::Empty,
                extra,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(error_from(resp, &final_url).await);
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag, or its digest); returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let repo = self.clone().for_push();
        let remote = repo.client.remote(&repo.domain).await?;
        let digest = Digest::sha256_of(&bytes);
        if let Ok(d) = Digest::parse(reference) {
            if d != digest {
                return Err(Error::DigestMismatch {
                    expected: d,
                    actual: digest,
                });
            }
        }
        let url = repo.url(&remote, &format!("manifests/{reference}"));
        let mut headers = HeaderMap::new();
        let (k, v) = header("content-type", media_type)?;
        headers.insert(k, v);
        let (resp, final_url) = repo
            .send(
                &remote,
                Method::PUT,
                &url,
                headers,
                ReqBody::Bytes(bytes),
                None,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(error_from(resp, &final_url).await);
        }
        if let Some(h) = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
        {
            if h.algorithm() == digest.algorithm() && h != digest {
                return Err(Error::DigestMismatch {
                    expected: digest,
                    actual: h,
                });
            }
        }
        Ok(digest)
    }

    /// Pushes an image manifest (or index) of the usual types; convenience over
    /// [`Repository::push_manifest`] that takes the media type from the document.
    pub async fn push_image_manifest(
        &self,
        reference: &str,
        manifest: &ImageManifest,
    ) -> Result<Digest> {
        let mt = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let mt = if mt.is_empty() {
            DOCKER_MANIFEST.to_string()
        } else {
            mt
        };
        let bytes = serde_json::to_vec(manifest).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.push_manifest(reference, &mt, Bytes::from(bytes)).await
    }

    /// The repository's tags, following `Link` pagination.
    pub async fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let remote = self.client.remote(&self.domain).await?;
        let mut url = self.url(&remote, "tags/list?n=1000");
        let mut out = Vec::new();
        for _ in 0..1000 {
            let (resp, final_url) = self
                .send(
                    &remote,
                    Method::GET,
                    &url,
                    HeaderMap::new(),
                    ReqBody::Empty,
                    None,
                )
                .await?;
            if !resp.status().is_success() {
                return Err(error_from(resp, &final_url).await);
            }
            let next = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link);
            let body = read_body(resp, 16 << 20, "tag list").await?;
            let list: TagList =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidResponse {
                    registry: remote.target.registry.clone(),
                    message: format!("tag list: {e}"),
                })?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = final_url.join(&n)?,
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// A local source error travels inside the transport error of the request; recover the
/// digest mismatch when that is what it was.
fn local_cause(e: Error) -> Error {
    match &e {
        Error::Transport { message, .. } if message.contains("digest mismatch") => {
            Error::InvalidInput(format!(
                "upload aborted: the source does not match its digest ({message})"
            ))
        }
        _ => e,
    }
}

/// The target of `<...>; rel="next"` in a `Link` header.
fn parse_next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.replace(' ', "").contains("rel=\"next\"") && !params.contains("rel=next") {
            return None;
        }
        let t = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        Some(t.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        assert_eq!(
            parse_next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(parse_next_link(r#"</a>; rel="prev""#), None);
        assert_eq!(parse_next_link("garbage"), None);
    }
}
