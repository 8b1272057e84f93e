//! The Cluster service: the membership and its changes, as etcd's: MemberAdd (also as a learner),
//! MemberRemove, MemberUpdate and MemberPromote go through raft, each checked against the
//! membership (and, with --strict-reconfig-check, against the quorum) with etcd's errors.
//! MemberList lists what the store's membership holds, with what each member published once it
//! started.

use std::time::{Duration, Instant};

use etcd_client::proto::{
    PbClusterService, PbMember, PbMemberAddRequest, PbMemberAddResponse, PbMemberListRequest,
    PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse, PbMemberRemoveRequest,
    PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::etcd::urls::EtcdUrl;
use crate::node::error::NodeError;
use crate::node::idutil::member_id;
use crate::node::mvcc::store::Store;
use crate::node::raft::membership::validate_member_change;
use crate::node::raft::write::Write;
use crate::node::rpc::ctx::Ctx;
use crate::node::rpc::forward::{Forward, Forwarded};

/// etcd's HealthInterval: a peer connected for less than this does not count as active.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// etcd's readyPercent: a learner may be promoted once its log matches 90% of the leader's.
const READY_PERCENT: f64 = 0.9;

pub struct ClusterService {
    pub ctx: Ctx,
}

/// The members as etcd lists them: an unstarted member has no name and no client URLs.
pub fn member_list(ctx: &Ctx, store: &Store) -> Vec<PbMember> {
    store
        .members()
        .iter()
        .map(|(id, m)| {
            let (name, client_urls) = match store.attributes().get(id) {
                Some((name, urls)) => (name.clone(), urls.clone()),
                None if *id == ctx.identity.member_id => (ctx.name.clone(), ctx.client_urls.clone()),
                None => (String::new(), Vec::new()),
            };
            PbMember {
                id: *id,
                name,
                peer_ur_ls: m.peer_urls.clone(),
                client_ur_ls: client_urls,
                is_learner: m.is_learner,
            }
        })
        .collect()
}

/// etcd's types.NewURLs: every URL valid (http, https, unix or unixs; host:port; no path), sorted.
fn peer_urls(urls: &[String]) -> Result<Vec<String>, NodeError> {
    EtcdUrl::new_urls(urls).map_err(|_| NodeError::BadMemberUrls)
}

/// The voting members' IDs.
fn voters(store: &Store) -> Vec<u64> {
    store.members().iter().filter(|(_, m)| !m.is_learner).map(|(id, _)| *id).collect()
}

/// Started voting members: those that published their attributes (etcd's IsStarted: a name).
fn started_voters(store: &Store, skip: Option<u64>) -> (usize, usize) {
    let voters = store.members().iter().filter(|(id, m)| !m.is_learner && Some(**id) != skip);
    let (mut members, mut started) = (0, 0);
    for (id, _) in voters {
        members += 1;
        if store.attributes().get(id).is_some_and(|(name, _)| !name.is_empty()) {
            started += 1;
        }
    }
    (members, started)
}

impl ClusterService {
    /// The response's members, as the store holds them after the change.
    fn members(&self) -> Result<Vec<PbMember>, Status> {
        let store = self.ctx.handle.read_store()?;
        Ok(member_list(&self.ctx, &store))
    }

    /// etcd's mayAddMember: with the strict check, a voter is added only if the started voters
    /// would still make a quorum with it, and any member only while this one has been connected to
    /// every voter for etcd's health interval.
    fn may_add(&self, store: &Store, learner: bool) -> Result<(), NodeError> {
        let (members, started) = started_voters(store, None);
        let members = members + 1;
        // Adding a second member to a one-member cluster (to restore its data) is allowed.
        let restoring = started == 1 && members == 2;
        if !learner && !restoring && started < members / 2 + 1 {
            return Err(NodeError::NotEnoughStarted);
        }
        let voters = voters(store);
        if self.connected_since(&voters) < voters.len() {
            return Err(NodeError::Unhealthy);
        }
        Ok(())
    }

    /// etcd's numConnectedSince: this member, and the peers its stream has reached for longer than
    /// the health interval.
    fn connected_since(&self, voters: &[u64]) -> usize {
        let me = self.ctx.identity.member_id;
        let cutoff = Instant::now().checked_sub(HEALTH_INTERVAL);
        voters
            .iter()
            .filter(|peer| {
                **peer == me || self.active_since(**peer).is_some_and(|t| cutoff.is_some_and(|c| t < c))
            })
            .count()
    }

    fn active_since(&self, peer: u64) -> Option<Instant> {
        self.ctx.transport.as_ref().and_then(|t| t.active_since(peer))
    }

    /// etcd's mayRemoveMember: a learner goes freely; a voter only if the started voters left make a
    /// quorum, and (unless it is down) if the members connected now would still be a quorum.
    fn may_remove(&self, store: &Store, id: u64) -> Result<(), NodeError> {
        if store.members().get(&id).is_some_and(|m| m.is_learner) {
            return Ok(());
        }
        let (members, started) = started_voters(store, Some(id));
        if started < members / 2 + 1 {
            return Err(NodeError::NotEnoughStarted);
        }
        if id != self.ctx.identity.member_id && self.active_since(id).is_none() {
            // A member that is down is not part of the quorum at work: safe to remove.
            return Ok(());
        }
        let voters = voters(store);
        let active = self.connected_since(&voters);
        if active.saturating_sub(1) < 1 + voters.len().saturating_sub(1) / 2 {
            return Err(NodeError::Unhealthy);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl PbClusterService for ClusterService {
    async fn member_add(
        &self,
        req: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        self.ctx.check_admin(&req)?;
        let req = req.into_inner();
        let urls = peer_urls(&req.peer_ur_ls)?;
        let member = self.add(urls, req.is_learner).await?;
        Ok(Response::new(PbMemberAddResponse {
            header: self.ctx.header(0),
            member: Some(member),
            members: self.members()?,
        }))
    }

    async fn member_remove(
        &self,
        req: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        self.ctx.check_admin(&req)?;
        self.remove(req.into_inner().id).await?;
        Ok(Response::new(PbMemberRemoveResponse { header: self.ctx.header(0), members: self.members()? }))
    }

    async fn member_update(
        &self,
        req: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        self.ctx.check_admin(&req)?;
        let req = req.into_inner();
        let urls = peer_urls(&req.peer_ur_ls)?;
        self.update(req.id, urls).await?;
        Ok(Response::new(PbMemberUpdateResponse { header: self.ctx.header(0), members: self.members()? }))
    }

    async fn member_list(
        &self,
        req: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        // etcd 3.4 answers anyone; once auth is on, this node answers its users only.
        self.ctx.check_user(&req)?;
        // etcd's MemberList header carries no revision.
        Ok(Response::new(PbMemberListResponse { header: self.ctx.header(0), members: self.members()? }))
    }

    async fn member_promote(
        &self,
        req: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        // Checked here only: the leader answering a forwarded promote trusts its peer.
        self.ctx.check_admin(&req)?;
        Ok(Response::new(self.promote(req.into_inner().id).await?))
    }
}

impl ClusterService {
    /// Adds a member with `urls` (checked and sorted), as etcd's AddMember: an ID from the URLs and
    /// the time, the strict check, the membership's.
    pub async fn add(&self, urls: Vec<String>, learner: bool) -> Result<PbMember, NodeError> {
        // etcd's NewMember for an added member: its peer URLs and the time, in seconds.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let id = member_id(&urls, &now.to_string());
        let member = PbMember { id, peer_ur_ls: urls, is_learner: learner, ..PbMember::default() };
        let write = Write::AddMember(member.clone());
        {
            let store = self.ctx.handle.read_store()?;
            if self.ctx.strict_reconfig_check {
                self.may_add(&store, learner)?;
            }
            validate_member_change(&store, &write)?;
        }
        self.ctx.handle.write(write).await?;
        Ok(member)
    }

    /// Removes member `id`, as etcd's RemoveMember.
    pub async fn remove(&self, id: u64) -> Result<(), NodeError> {
        let write = Write::RemoveMember(PbMember { id, ..PbMember::default() });
        {
            let store = self.ctx.handle.read_store()?;
            if self.ctx.strict_reconfig_check {
                self.may_remove(&store, id)?;
            }
            validate_member_change(&store, &write)?;
        }
        self.ctx.handle.write(write).await?;
        Ok(())
    }

    /// Gives member `id` new peer URLs (checked and sorted), as etcd's UpdateMember.
    pub async fn update(&self, id: u64, urls: Vec<String>) -> Result<(), NodeError> {
        let write = Write::UpdateMember(PbMember { id, peer_ur_ls: urls, ..PbMember::default() });
        validate_member_change(&*self.ctx.handle.read_store()?, &write)?;
        self.ctx.handle.write(write).await?;
        Ok(())
    }

    /// A promotion, on the leader or forwarded to it.
    pub async fn promote(&self, id: u64) -> Result<PbMemberPromoteResponse, Status> {
        // Only the leader knows how far the learner got: a follower asks it, as etcd forwards.
        let Some(progress) = self.ctx.handle.leader_progress().await? else {
            let members = match self.ctx.forward(&Forward::Promote { id }).await? {
                Some(Forwarded::Promote { members }) => members.into_iter().map(PbMember::from).collect(),
                // The leader changed meanwhile (this member now leads): the client retries.
                _ => return Err(NodeError::NotLeader.into()),
            };
            return Ok(PbMemberPromoteResponse { header: self.ctx.header(0), members });
        };
        let write = Write::PromoteMember(PbMember { id, ..PbMember::default() });
        {
            let store = self.ctx.handle.read_store()?;
            // etcd's isLearnerReady, then IsReadyToPromoteMember with the strict check.
            if let Some(matched) = progress.get(&id) {
                let leader = progress.get(&self.ctx.identity.member_id).copied().unwrap_or(0);
                if (*matched as f64) < leader as f64 * READY_PERCENT {
                    return Err(NodeError::LearnerNotReady.into());
                }
            }
            if self.ctx.strict_reconfig_check {
                let (members, started) = started_voters(&store, None);
                // The learner counts as a started member of the future quorum.
                let (members, started) = (members + 1, started + 1);
                if started < members / 2 + 1 {
                    return Err(NodeError::NotEnoughStarted.into());
                }
            }
            validate_member_change(&store, &write)?;
        }
        self.ctx.write(write).await?;
        Ok(PbMemberPromoteResponse { header: self.ctx.header(0), members: self.members()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_checked_and_sorted_as_etcd_does() {
        let urls = |l: &[&str]| peer_urls(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            urls(&["http://10.0.0.2:2380", "http://10.0.0.1:2380"]),
            Ok(vec!["http://10.0.0.1:2380".to_string(), "http://10.0.0.2:2380".to_string()])
        );
        assert_eq!(urls(&["10.0.0.1:2380"]), Err(NodeError::BadMemberUrls));
        assert_eq!(urls(&["http://10.0.0.1:2380/path"]), Err(NodeError::BadMemberUrls));
        assert_eq!(urls(&["ftp://10.0.0.1:2380"]), Err(NodeError::BadMemberUrls));
        assert_eq!(urls(&[]), Err(NodeError::BadMemberUrls));
    }
}
