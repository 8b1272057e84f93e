//! The Cluster service: MemberList of the bootstrap members, with what each published once it
//! started. Membership changes are refused with a status that says so until they are built.

use etcd_client::proto::{
    PbClusterService, PbMember, PbMemberAddRequest, PbMemberAddResponse, PbMemberListRequest,
    PbMemberListResponse, PbMemberPromoteRequest, PbMemberPromoteResponse, PbMemberRemoveRequest,
    PbMemberRemoveResponse, PbMemberUpdateRequest, PbMemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use crate::node::rpc::Ctx;

pub struct ClusterService {
    pub ctx: Ctx,
}

fn single_member() -> Status {
    Status::unimplemented("etcdeck: membership changes are not supported yet (the cluster is static)")
}

#[tonic::async_trait]
impl PbClusterService for ClusterService {
    async fn member_add(
        &self,
        _: Request<PbMemberAddRequest>,
    ) -> Result<Response<PbMemberAddResponse>, Status> {
        Err(single_member())
    }

    async fn member_remove(
        &self,
        _: Request<PbMemberRemoveRequest>,
    ) -> Result<Response<PbMemberRemoveResponse>, Status> {
        Err(single_member())
    }

    async fn member_update(
        &self,
        _: Request<PbMemberUpdateRequest>,
    ) -> Result<Response<PbMemberUpdateResponse>, Status> {
        Err(single_member())
    }

    async fn member_list(
        &self,
        _: Request<PbMemberListRequest>,
    ) -> Result<Response<PbMemberListResponse>, Status> {
        let published = self.ctx.handle.read_store()?.attributes().clone();
        let members = self
            .ctx
            .members
            .iter()
            .map(|(id, name, peer_urls)| {
                // A member that has not published yet shows as etcd shows it: no name, no client URLs.
                let (name, client_urls) = match published.get(id) {
                    Some((name, urls)) => (name.clone(), urls.clone()),
                    None if *id == self.ctx.identity.member_id => {
                        (name.clone(), self.ctx.client_urls.clone())
                    }
                    None => (String::new(), Vec::new()),
                };
                PbMember {
                    id: *id,
                    name,
                    peer_ur_ls: peer_urls.clone(),
                    client_ur_ls: client_urls,
                    is_learner: false,
                }
            })
            .collect();
        // etcd's MemberList header carries no revision.
        Ok(Response::new(PbMemberListResponse { header: self.ctx.header(0), members }))
    }

    async fn member_promote(
        &self,
        _: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        Err(single_member())
    }
}
