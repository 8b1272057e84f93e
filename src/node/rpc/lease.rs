//! The Lease service. Grants and revocations go through raft; keepalives and time-to-live answers come
//! from the leader's lessor clock, as in etcd.

use std::pin::Pin;

use etcd_client::proto::{
    PbLeaseGrantRequest, PbLeaseGrantResponse, PbLeaseKeepAliveRequest, PbLeaseKeepAliveResponse,
    PbLeaseLeasesRequest, PbLeaseLeasesResponse, PbLeaseRevokeRequest, PbLeaseRevokeResponse, PbLeaseService,
    PbLeaseStatus, PbLeaseTimeToLiveRequest, PbLeaseTimeToLiveResponse,
};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::node::error::NodeError;
use crate::node::lease::MAX_LEASE_TTL;
use crate::node::raft::write::{Write, WriteResponse};
use crate::node::rpc::ctx::{mismatched, Ctx};
use crate::node::rpc::forward::{Forward, Forwarded};

pub use crate::node::idutil::IdGen;

pub struct LeaseService {
    pub ctx: Ctx,
    pub ids: IdGen,
}

impl LeaseService {
    /// A keep-alive: renewed by the leader's clock, here or (forwarded) on the leader.
    async fn keep_alive(ctx: &Ctx, id: i64) -> Result<PbLeaseKeepAliveResponse, Status> {
        match ctx.forward(&Forward::KeepAlive { id }).await? {
            None => Ok(keep_alive_here(ctx, id)?),
            Some(Forwarded::KeepAlive { ttl }) => {
                let revision = ctx.handle.read_store()?.current_revision();
                Ok(PbLeaseKeepAliveResponse { header: ctx.header(revision), id, ttl })
            }
            Some(_) => Err(mismatched()),
        }
    }
}

/// A keep-alive on the leader.
pub fn keep_alive_here(ctx: &Ctx, id: i64) -> Result<PbLeaseKeepAliveResponse, NodeError> {
    let (granted, revision) = {
        let store = ctx.handle.read_store()?;
        (store.leases().get(&id).map(|l| l.ttl), store.current_revision())
    };
    let ttl = match granted {
        Some(ttl) if ctx.handle.lessor.renew(id, ttl) => ttl,
        // Unknown or already expired: etcd answers TTL 0 and keeps the stream open.
        _ => 0,
    };
    Ok(PbLeaseKeepAliveResponse { header: ctx.header(revision), id, ttl })
}

/// A lease's time to live, by the leader's clock.
pub fn time_to_live_here(
    ctx: &Ctx,
    r: &PbLeaseTimeToLiveRequest,
) -> Result<PbLeaseTimeToLiveResponse, NodeError> {
    let store = ctx.handle.read_store()?;
    let header = ctx.header(store.current_revision());
    Ok(match (store.leases().get(&r.id), ctx.handle.lessor.remaining(r.id)) {
        (Some(lease), Some(left)) => PbLeaseTimeToLiveResponse {
            header,
            id: r.id,
            ttl: left,
            granted_ttl: lease.ttl,
            keys: if r.keys { lease.keys.iter().cloned().collect() } else { Vec::new() },
        },
        // etcd answers an unknown lease with TTL -1, not an error.
        _ => PbLeaseTimeToLiveResponse { header, id: r.id, ttl: -1, granted_ttl: 0, keys: Vec::new() },
    })
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<PbLeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl PbLeaseService for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<PbLeaseGrantRequest>,
    ) -> Result<Response<PbLeaseGrantResponse>, Status> {
        let mut r = req.into_inner();
        if r.ttl > MAX_LEASE_TTL {
            return Err(NodeError::LeaseTtlTooLarge.into());
        }
        while r.id == 0 {
            r.id = self.ids.next();
        }
        match self.ctx.write(Write::LeaseGrant(r)).await? {
            WriteResponse::LeaseGrant(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn lease_revoke(
        &self,
        req: Request<PbLeaseRevokeRequest>,
    ) -> Result<Response<PbLeaseRevokeResponse>, Status> {
        // The member applying it checks the caller may write every key attached (etcd's
        // checkLeasePuts).
        let write = self.ctx.as_caller(req, Write::LeaseRevoke)?;
        match self.ctx.write(write).await? {
            WriteResponse::LeaseRevoke(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<PbLeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let guard = self.ctx.leader_guard(&req)?;
        let ctx = self.ctx.clone();
        let out = req.into_inner().then(move |item| {
            let ctx = ctx.clone();
            async move {
                let r = item?;
                Self::keep_alive(&ctx, r.id).await
            }
        });
        Ok(Response::new(crate::node::rpc::ctx::until_no_leader(out, guard)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<PbLeaseTimeToLiveRequest>,
    ) -> Result<Response<PbLeaseTimeToLiveResponse>, Status> {
        // etcd's checkLeaseTimeToLive (3.4.26, 3.5.9): asking for the keys, once auth is on, needs
        // read access to every key attached to the lease.
        if req.get_ref().keys {
            let who = self.ctx.caller(&req)?;
            let store = self.ctx.handle.read_store()?;
            let auth = store.auth();
            if auth.enabled {
                if who.is_none() {
                    return Err(NodeError::UserEmpty.into());
                }
                for key in store.leases().get(&req.get_ref().id).map(|l| &l.keys).into_iter().flatten() {
                    auth.permitted(who.as_ref(), key, &[], crate::node::auth::Op::Read)?;
                }
            }
        }
        let r = req.into_inner();
        // The remaining TTL is the leader's to tell.
        match self.ctx.forward(&Forward::TimeToLive { id: r.id, keys: r.keys }).await? {
            None => Ok(Response::new(time_to_live_here(&self.ctx, &r)?)),
            Some(Forwarded::TimeToLive { ttl, granted_ttl, keys }) => {
                let revision = self.ctx.handle.read_store()?.current_revision();
                Ok(Response::new(PbLeaseTimeToLiveResponse {
                    header: self.ctx.header(revision),
                    id: r.id,
                    ttl,
                    granted_ttl,
                    keys,
                }))
            }
            Some(_) => Err(mismatched()),
        }
    }

    async fn lease_leases(
        &self,
        _req: Request<PbLeaseLeasesRequest>,
    ) -> Result<Response<PbLeaseLeasesResponse>, Status> {
        let store = self.ctx.handle.read_store()?;
        let lessor = &self.ctx.handle.lessor;
        // Soonest to expire first, as etcd lists them.
        let mut ids: Vec<(i64, i64)> =
            store.leases().keys().map(|id| (lessor.remaining(*id).unwrap_or(i64::MAX), *id)).collect();
        ids.sort();
        let leases = ids.into_iter().map(|(_, id)| PbLeaseStatus { id }).collect();
        Ok(Response::new(PbLeaseLeasesResponse { header: self.ctx.header(store.current_revision()), leases }))
    }
}

/// The leader's expiry loop: every half second, revoke (through raft) what has expired, at most 500
/// at a time, as etcd's lessor does.
pub async fn expire_leases(ctx: Ctx, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if ctx.handle.leader() != ctx.identity.member_id {
            continue;
        }
        for id in ctx.handle.lessor.expired(500) {
            // Not found means someone revoked it first; any other failure is retried next round.
            if let Err(NodeError::LeaseNotFound) =
                ctx.handle.write(Write::LeaseRevoke(PbLeaseRevokeRequest { id })).await
            {
                ctx.handle.lessor.forget(id);
            }
        }
    }
}
