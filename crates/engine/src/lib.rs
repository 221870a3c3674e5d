//! The engine: every operation berthd offers, as plain Rust calls on domain types. It
//! knows no protocol: the Docker API front-end (`crates/daemon`) and later the CRI one
//! translate to and from these calls.

pub mod check;
pub mod config;
pub mod containers;
pub mod df;
pub mod error;
pub mod events;
pub mod images;
pub mod pull;
pub mod push;
pub mod store;
pub mod system;

use std::sync::RwLock;

pub use config::Config;
pub use error::{Error, Result};
/// The registry client's types the front-ends need (credentials, `X-Registry-Auth`).
pub use registry;

/// The engine: owns the data root and the exec root.
pub struct Engine {
    pub config: Config,
    /// Stable id of this engine (persisted in the data root), shown by `info`.
    pub id: String,
    /// Blobs and layer snapshots.
    images: image::ImageStore,
    /// Metadata: `<data-root>/berth.db`.
    db: store::Store,
    /// Loads and imports (which only add) share it; removals and prunes take it alone,
    /// so no removal deletes a layer that a load in flight is about to reuse.
    image_lock: RwLock<()>,
    /// `exec` instances (in memory, as dockerd keeps them).
    execs: containers::exec::Execs,
    /// Recent events and live subscribers (`docker events`).
    events: events::Events,
    /// The registry client (pull, push, login): connections and tokens live as long as
    /// the engine.
    registry: registry::Client,
}

impl Engine {
    /// Opens (creating as needed) the data root and exec root.
    pub fn open(config: Config) -> Result<Engine> {
        for dir in [&config.data_root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let id = system::engine_id(&config.data_root)?;
        let images = image::ImageStore::open(&config.data_root)
            .map_err(|e| Error::Internal(format!("opening the image store: {e}")))?;
        let db = store::Store::open(&config.data_root.join("berth.db"))?;
        let registry = pull::registry_client(&config)?;
        Ok(Engine {
            config,
            id,
            images,
            db,
            image_lock: RwLock::new(()),
            execs: Default::default(),
            events: events::Events::new(),
            registry,
        })
    }
}
