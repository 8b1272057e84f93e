//! What the driver is started with, and why a start can fail.

use std::sync::Arc;
use std::time::Duration;

use crate::node::mvcc::store::RaftMember;
use crate::node::raft::storage::LogStoreError;
use crate::node::raft::transport::Transport;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error(transparent)]
    Mvcc(#[from] crate::node::mvcc::error::MvccError),
    #[error("{}: {source}", path.display())]
    Store { path: std::path::PathBuf, source: crate::node::mvcc::error::MvccError },
    #[error("cannot start the raft thread: {0}")]
    Spawn(std::io::Error),
}

impl DriverError {
    /// Whether the disk refused a write for want of space (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        use crate::node::mvcc::error::MvccError;
        match self {
            DriverError::Log(LogStoreError::Wal(w)) => w.is_no_space(),
            DriverError::Mvcc(MvccError::DiskFull(_)) => true,
            DriverError::Store { source: MvccError::DiskFull(_), .. } => true,
            _ => false,
        }
    }
}

pub struct Options {
    pub member_id: u64,
    pub heartbeat: Duration,
    /// In heartbeats, as raft counts it.
    pub election_ticks: usize,
    /// Where the raft log lives (etcd's --wal-dir, by default <data-dir>/member/wal).
    pub wal_dir: std::path::PathBuf,
    /// Where the store lives (<data-dir>/member/snap/db; in a dir imported from etcd,
    /// member/etcdeck/db beside etcd's own files).
    pub db_dir: std::path::PathBuf,
    pub max_request_bytes: usize,
    /// Applied entries between snapshots (etcd's --snapshot-count): then the store is made durable
    /// and the raft log entries it holds are dropped.
    pub snapshot_count: u64,
    /// The members a new cluster starts with (recorded at the first start); empty for a member
    /// joining a running cluster, which learns the membership from the leader's snapshot.
    pub bootstrap: Vec<(u64, RaftMember)>,
    /// Where peers are while the store holds no membership (a joining member, before the
    /// leader's snapshot): the members the running cluster listed.
    pub known_peers: Vec<(u64, Vec<String>)>,
    /// etcd's --force-new-cluster: every other member is removed by entries appended to the log.
    pub force_new_cluster: bool,
    /// Where messages to peers go (None: a single member).
    pub transport: Option<Arc<dyn Transport>>,
    /// How long a proposal or a read may wait for raft before etcd's "request timed out".
    pub request_timeout: Duration,
    /// How long a simple auth token lives unused (etcd's --auth-token-ttl).
    pub token_ttl: Duration,
    /// --auth-token jwt,...: the keys JWTs are signed and checked with (simple tokens without).
    pub jwt: Option<crate::node::auth::JwtKeys>,
    /// Bytes the log may still write before its disk answers ENOSPC (tests inject a full disk
    /// with it; None in a running node).
    pub log_space: Option<u64>,
}

impl Options {
    /// A member with etcd's defaults, its log in the data dir.
    pub fn new(member_id: u64, data_dir: &std::path::Path) -> Self {
        Options {
            member_id,
            heartbeat: Duration::from_millis(100),
            election_ticks: 10,
            wal_dir: data_dir.join("member").join("wal"),
            db_dir: data_dir.join("member").join("snap").join("db"),
            max_request_bytes: 1536 * 1024,
            snapshot_count: 100_000,
            bootstrap: vec![(member_id, RaftMember::default())],
            known_peers: Vec::new(),
            force_new_cluster: false,
            transport: None,
            request_timeout: Duration::from_secs(7),
            token_ttl: Duration::from_secs(crate::node::auth::DEFAULT_TOKEN_TTL),
            jwt: None,
            log_space: None,
        }
    }
}
