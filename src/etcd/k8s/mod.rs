//! Kubernetes values in etcd: how kube-apiserver stores an object (stored.rs), the schema of
//! Kubernetes' types (schema.rs, from assets/kubernetes/), and objects decoded to the JSON the API
//! prints (decode.rs) and written back as the apiserver writes them (encode.rs).

pub mod decode;
pub mod encode;
#[cfg(test)]
mod kinds_tests;
pub mod schema;
pub mod stored;

pub use stored::{RegistryKey, Stored, StoredError, ENCRYPTED_PREFIX, PROTOBUF_MAGIC};
