//! berth's registry client: the OCI distribution protocol, client side.
//!
//! - [`Client`] holds the configuration ([`RegistryConfig`]: certs.d, insecure
//!   registries, mirrors), the connection pool, and the challenges and bearer tokens
//!   learnt per registry; it is cheap to clone and meant to live as long as the daemon.
//! - [`Repository`] (from [`Client::repository`]) does the work: resolve a reference to
//!   an image manifest for a [`Platform`], fetch manifests and blobs (as verified
//!   [`BlobReader`]s), push blobs (skip present ones, cross-repository mount,
//!   monolithic or chunked) and manifests, list tags.
//! - [`Credentials`] come from the caller; [`AuthConfig`] decodes the Engine API's
//!   `X-Registry-Auth` header. [`Client::login`] checks credentials as `docker login`.
//!
//! Everything is async on tokio; sync code (the engine, on blocking threads) calls it
//! through `Handle::block_on`, and reads blobs with [`BlobReader::into_blocking`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod blob;
mod client;
pub mod error;
pub mod manifest;
pub mod policy;
mod tls;
mod transport;

pub use auth::{parse_www_authenticate, AuthConfig, Challenge, Credentials};
pub use blob::{BlobReader, BlockingBlobReader};
pub use client::{BlobPush, Client, LoginOutcome, Repository, Resolved};
pub use error::{Error, Result};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform, RawManifest};
pub use policy::{normalize_server, InsecureEntry, RegistryConfig};
