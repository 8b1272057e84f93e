//! What a follower asks the leader, as etcd forwards it over its peer URLs: lease keep-alives and
//! time-to-live answers (the lessor's clock runs on the leader) and learner promotion (only the
//! leader knows how far a learner got). The request goes over the peer transport, so it needs
//! neither client URLs reachable from member to member nor client credentials under TLS or auth.
//! This is the asking side, which the services use; the leader's side, which uses the services, is
//! forward_answer.rs.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use etcd_client::proto::PbMember;

use crate::node::error::NodeError;
use crate::node::rpc::ctx::Ctx;

/// How long a forwarded request may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Forward {
    KeepAlive { id: i64 },
    TimeToLive { id: i64, keys: bool },
    Promote { id: u64 },
}

/// A member as MemberPromote answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl From<PbMember> for Member {
    fn from(m: PbMember) -> Self {
        Self {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_ur_ls,
            client_urls: m.client_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

impl From<Member> for PbMember {
    fn from(m: Member) -> Self {
        Self {
            id: m.id,
            name: m.name,
            peer_ur_ls: m.peer_urls,
            client_ur_ls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Forwarded {
    KeepAlive {
        ttl: i64,
    },
    TimeToLive {
        ttl: i64,
        granted_ttl: i64,
        keys: Vec<Vec<u8>>,
    },
    Promote {
        members: Vec<Member>,
    },
    /// The leader's error, as its gRPC code and text.
    Failed {
        code: i32,
        message: String,
    },
}

impl Ctx {
    /// Asks the leader to answer `request`; None when this member is the leader.
    pub async fn forward(&self, request: &Forward) -> Result<Option<Forwarded>, Status> {
        let leader = self.handle.leader();
        if leader == self.identity.member_id {
            return Ok(None);
        }
        if leader == 0 {
            return Err(NodeError::NoLeader.into());
        }
        let url = self
            .handle
            .read_store()?
            .members()
            .get(&leader)
            .and_then(|m| m.peer_urls.first().cloned())
            .and_then(|u| crate::etcd::urls::EtcdUrl::parse(&u).ok())
            .ok_or(NodeError::NoLeader)?;
        let body = serde_json::to_vec(request).map_err(|e| Status::internal(e.to_string()))?;
        let ids = (self.identity.cluster_id, self.identity.member_id, leader);
        let target = (url.host_port(), url.scheme == "https");
        let answer = crate::node::raft::transport::forward(
            &self.dialer,
            (&target.0, target.1),
            ids,
            &body,
            FORWARD_TIMEOUT,
        )
        .await
        .map_err(|why| {
            eprintln!("etcdeck node: forwarding to the leader {leader:x} failed: {why}");
            Status::from(NodeError::Timeout)
        })?;
        match serde_json::from_slice::<Forwarded>(&answer) {
            Ok(Forwarded::Failed { code, message }) => Err(Status::new(Code::from_i32(code), message)),
            Ok(answer) => Ok(Some(answer)),
            Err(e) => Err(Status::internal(format!("unreadable answer from the leader: {e}"))),
        }
    }
}
