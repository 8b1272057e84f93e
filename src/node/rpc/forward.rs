//! What a follower asks the leader, as etcd forwards it over its peer URLs: lease keep-alives and
//! time-to-live answers (the lessor's clock runs on the leader) and learner promotion (only the
//! leader knows how far a learner got). The request goes over the peer transport, so it needs
//! neither client URLs reachable from member to member nor client credentials under TLS or auth.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use etcd_client::proto::{PbLeaseTimeToLiveRequest, PbMember};

use crate::node::error::NodeError;
use crate::node::rpc::cluster::ClusterService;
use crate::node::rpc::lease::{keep_alive_here, time_to_live_here};
use crate::node::rpc::Ctx;

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

/// The leader's side: answers a forwarded request as if a client had asked it.
pub async fn answer(ctx: &Ctx, request: &[u8]) -> Vec<u8> {
    let outcome = match serde_json::from_slice::<Forward>(request) {
        Ok(r) => answer_one(ctx, r).await,
        Err(e) => Err(Status::invalid_argument(format!("unreadable forwarded request: {e}"))),
    };
    let reply = outcome
        .unwrap_or_else(|s| Forwarded::Failed { code: s.code() as i32, message: s.message().to_string() });
    serde_json::to_vec(&reply).unwrap_or_default()
}

async fn answer_one(ctx: &Ctx, request: Forward) -> Result<Forwarded, Status> {
    // A member that stopped leading meanwhile does not forward again: the asker retries.
    if ctx.handle.leader() != ctx.identity.member_id {
        return Err(NodeError::NotLeader.into());
    }
    Ok(match request {
        Forward::KeepAlive { id } => Forwarded::KeepAlive { ttl: keep_alive_here(ctx, id)?.ttl },
        Forward::TimeToLive { id, keys } => {
            let r = time_to_live_here(ctx, &PbLeaseTimeToLiveRequest { id, keys })?;
            Forwarded::TimeToLive { ttl: r.ttl, granted_ttl: r.granted_ttl, keys: r.keys }
        }
        Forward::Promote { id } => {
            let service = ClusterService { ctx: ctx.clone() };
            let resp = service.promote(id).await?;
            let members = resp.members.into_iter().map(Member::from).collect();
            Forwarded::Promote { members }
        }
    })
}
