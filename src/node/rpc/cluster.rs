//! The Cluster service for a cluster of one: MemberList. Membership changes need the peer transport
//! of node II; until then they are refused with a status that says so.

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
    Status::unimplemented(
        "etcdeck: this node runs a single-member cluster; membership changes are not supported",
    )
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
        let member = PbMember {
            id: self.ctx.identity.member_id,
            name: self.ctx.name.clone(),
            peer_ur_ls: self.ctx.peer_urls.clone(),
            client_ur_ls: self.ctx.client_urls.clone(),
            is_learner: false,
        };
        // etcd's MemberList header carries no revision.
        Ok(Response::new(PbMemberListResponse { header: self.ctx.header(0), members: vec![member] }))
    }

    async fn member_promote(
        &self,
        _: Request<PbMemberPromoteRequest>,
    ) -> Result<Response<PbMemberPromoteResponse>, Status> {
        Err(single_member())
    }
}
