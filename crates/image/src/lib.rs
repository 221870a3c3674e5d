//! berth's image store: references and digests, the content store, image configs and
//! manifests, layer application and diff, overlay snapshots, and the docker-archive and
//! OCI-layout formats of save/load.

pub mod archive;
pub mod commit;
pub mod config;
pub mod content;
pub mod digest;
pub mod import;
pub mod layer;
pub mod reference;
pub mod rootfs;
pub mod snapshot;
pub mod store;

pub use digest::Digest;
pub use reference::ImageRef;
pub use store::ImageStore;
