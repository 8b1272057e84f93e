//! Multi-version storage with etcd's semantics: revisions, the key index, and the store on sled.

pub mod apply;
pub mod error;
pub mod key_index;
pub mod store;
pub mod tally;
