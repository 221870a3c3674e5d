//! The engine: every operation berthd offers, as plain Rust calls on domain types. It
//! knows no protocol: the Docker API front-end (`crates/daemon`) and later the CRI one
//! translate to and from these calls.

pub mod config;
pub mod error;
pub mod system;

pub use config::Config;
pub use error::{Error, Result};

/// The engine: owns the data root and the exec root.
pub struct Engine {
    pub config: Config,
    /// Stable id of this engine (persisted in the data root), shown by `info`.
    pub id: String,
}

impl Engine {
    /// Opens (creating as needed) the data root and exec root.
    pub fn open(config: Config) -> Result<Engine> {
        for dir in [&config.data_root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let id = system::engine_id(&config.data_root)?;
        Ok(Engine { config, id })
    }
}
