//! The node's errors, with etcd's texts and gRPC codes (etcd's api/v3rpc/rpctypes/error.go), so
//! etcd's clients see exactly what etcd would have sent.

use crate::node::mvcc::error::MvccError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    #[error("etcdserver: given member URLs are invalid")]
    BadMemberUrls,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// A member with only the JWT public key cannot issue tokens (etcd's ErrVerifyOnly, which its
    /// gRPC layer sends as Unknown with this text).
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    /// The state machine's storage failed; etcd stops in this case, a node must not go on serving.
    #[error("etcdserver: {0}")]
    Storage(String),
}

impl From<MvccError> for NodeError {
    fn from(e: MvccError) -> Self {
        match e {
            MvccError::Compacted => NodeError::Compacted,
            MvccError::FutureRev => NodeError::FutureRev,
            other => NodeError::Storage(other.to_string()),
        }
    }
}

impl NodeError {
    pub fn code(&self) -> tonic::Code {
        match self {
            NodeError::EmptyKey
            | NodeError::KeyNotFound
            | NodeError::ValueProvided
            | NodeError::LeaseProvided
            | NodeError::TooManyOps
            | NodeError::DuplicateKey
            | NodeError::RequestTooLarge => tonic::Code::InvalidArgument,
            NodeError::Compacted | NodeError::FutureRev | NodeError::LeaseTtlTooLarge => {
                tonic::Code::OutOfRange
            }
            NodeError::LeaseNotFound | NodeError::MemberNotFound => tonic::Code::NotFound,
            NodeError::BadMemberUrls => tonic::Code::InvalidArgument,
            NodeError::LeaseExists
            | NodeError::BadLeaderTransferee
            | NodeError::NotLeader
            | NodeError::MemberExists
            | NodeError::PeerUrlExists
            | NodeError::MemberNotLearner
            | NodeError::LearnerNotReady
            | NodeError::TooManyLearners => tonic::Code::FailedPrecondition,
            NodeError::Unhealthy | NodeError::NotSupportedForLearner => tonic::Code::Unavailable,
            // etcd 3.4 has no gRPC status for it: its gRPC layer answers Unknown with the text.
            // etcd 3.4 maps "not enough started members" to a client-side error type that gRPC does
            // not know, so the wire says Unknown (etcd's clients match the text).
            NodeError::LeaderTransferTimeout | NodeError::NotEnoughStarted => tonic::Code::Unknown,
            NodeError::NoSpace => tonic::Code::ResourceExhausted,
            NodeError::Timeout | NodeError::NoLeader | NodeError::Stopped => tonic::Code::Unavailable,
            NodeError::Storage(_) => tonic::Code::Internal,
            NodeError::RootUserNotExist
            | NodeError::RootRoleNotExist
            | NodeError::UserAlreadyExist
            | NodeError::UserNotFound
            | NodeError::RoleAlreadyExist
            | NodeError::RoleNotFound
            | NodeError::RoleNotGranted
            | NodeError::PermissionNotGranted
            | NodeError::AuthNotEnabled => tonic::Code::FailedPrecondition,
            NodeError::UserEmpty
            | NodeError::RoleEmpty
            | NodeError::AuthFailed
            | NodeError::InvalidAuthMgmt
            | NodeError::AuthOldRevision => tonic::Code::InvalidArgument,
            NodeError::PermissionDenied => tonic::Code::PermissionDenied,
            NodeError::InvalidAuthToken => tonic::Code::Unauthenticated,
            NodeError::VerifyOnly => tonic::Code::Unknown,
        }
    }
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_texts_are_etcds() {
        let s = tonic::Status::from(NodeError::from(MvccError::Compacted));
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::OutOfRange, "etcdserver: mvcc: required revision has been compacted")
        );
        let s = tonic::Status::from(NodeError::DuplicateKey);
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::InvalidArgument, "etcdserver: duplicate key given in txn request")
        );
        let s = tonic::Status::from(NodeError::LeaseNotFound);
        assert_eq!((s.code(), s.message()), (tonic::Code::NotFound, "etcdserver: requested lease not found"));
        assert_eq!(NodeError::EmptyKey.to_string(), "etcdserver: key is not provided");
    }
}
