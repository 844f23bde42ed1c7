//! Adapters: implementations of the ports. `local` runs everything in one process on
//! embedded parts (SQLite, files); the AWS adapters are the `aws` crate's.

pub mod local;
