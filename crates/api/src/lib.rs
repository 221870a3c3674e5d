//! The Docker Engine API as berth speaks it: the JSON models, the error shape with its
//! HTTP status, and API version negotiation. Shared by berthd (server) and the berth CLI
//! (client), so both agree on every field name.

pub mod detach;
pub mod error;
pub mod images;
pub mod models;
pub mod version;

pub use error::ApiError;
pub use version::ApiVersion;
