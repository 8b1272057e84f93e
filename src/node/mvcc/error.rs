//! The store's errors, in etcd's words where etcd has them (mvcc's ErrCompacted and ErrFutureRev).
//! A leaf: the node's error module maps them to gRPC statuses without importing the store.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// etcd's ErrCompacted.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// etcd's ErrFutureRev.
    #[error("mvcc: required revision is a future revision")]
    FutureRev,
    #[error("mvcc: database corrupt: {0}")]
    Corrupt(String),
    /// The records do not add up to the tally written with them: pairs went missing.
    #[error("mvcc: database lost records: {0}")]
    Lost(String),
    #[error("mvcc: storage: {0}")]
    Storage(String),
    /// The disk is full (ENOSPC) or the quota spent (EDQUOT).
    #[error("mvcc: storage: {0}")]
    DiskFull(String),
}

impl From<sled::Error> for MvccError {
    fn from(e: sled::Error) -> Self {
        match &e {
            sled::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                MvccError::DiskFull(e.to_string())
            }
            _ => MvccError::Storage(e.to_string()),
        }
    }
}
