//! The embedded adapters of local mode: SQLite (WAL) in a data directory, a durable queue
//! on SQLite, secrets from a file or the environment.

pub mod archive;
pub mod audit;
pub mod catalog;
mod checkpoint;
pub mod db;
pub mod queue;
pub mod requests;
pub mod resources;
pub mod secrets;
pub mod state;
pub mod workflows;

pub use archive::DirArchive;
pub use audit::SqliteAuditLog;
pub use catalog::LocalCatalog;
pub use db::Db;
pub use queue::SqliteQueue;
pub use requests::SqliteRequestStore;
pub use resources::SqliteResourceStore;
pub use secrets::LocalSecrets;
pub use state::SqliteStateStore;
pub use workflows::{LocalWorkflows, QueueTarget};
