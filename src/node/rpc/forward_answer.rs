//! The leader's side of forward.rs: a request a follower forwarded over the peer transport is
//! answered by the same services that answer clients.

use etcd_client::proto::PbLeaseTimeToLiveRequest;
use tonic::Status;

use crate::node::error::NodeError;
use crate::node::rpc::cluster::ClusterService;
use crate::node::rpc::ctx::Ctx;
use crate::node::rpc::forward::{Forward, Forwarded, Member};
use crate::node::rpc::lease::{keep_alive_here, time_to_live_here};

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
