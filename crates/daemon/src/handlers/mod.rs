//! Handlers, one file per API group. Each translates HTTP to an engine call and the
//! result back to Docker's JSON; none holds logic of its own.

pub mod archive;
pub mod containers;
pub mod events;
pub mod exec;
pub mod images;
pub mod system;
