//! The KV service: etcd's checks before raft, serializable reads from the store, linearizable reads
//! after a ReadIndex, and writes through raft.

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService, PbPutRequest,
    PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse, PbTxnRequest, PbTxnResponse,
};
use tonic::{Request, Response, Status};

use crate::node::error::NodeError;
use crate::node::mvcc::apply;
use crate::node::raft::driver::{Handle, Write, WriteResponse};
use crate::node::rpc::Identity;

pub struct KvService {
    pub handle: Handle,
    pub identity: Identity,
    pub max_txn_ops: usize,
}

fn lock_failed() -> Status {
    Status::from(NodeError::Storage("store lock poisoned".into()))
}

impl KvService {
    /// Proposes a write and completes its response header.
    async fn write(&self, write: Write) -> Result<WriteResponse, Status> {
        let mut resp = self.handle.write(write).await?;
        let header = match &mut resp {
            WriteResponse::Put(r) => &mut r.header,
            WriteResponse::Delete(r) => &mut r.header,
            WriteResponse::Txn(r) => &mut r.header,
            WriteResponse::Compact(r) => &mut r.header,
        };
        self.identity.fill(header, self.handle.raft_term());
        Ok(resp)
    }
}

fn mismatched() -> Status {
    Status::internal("mismatched response")
}

#[tonic::async_trait]
impl PbKvService for KvService {
    async fn range(&self, req: Request<PbRangeRequest>) -> Result<Response<PbRangeResponse>, Status> {
        let r = req.into_inner();
        apply::validate_range(&r)?;
        if !r.serializable {
            self.handle.read_index().await?;
        }
        let mut resp = {
            let store = self.handle.store.read().map_err(|_| lock_failed())?;
            apply::apply_range(&store, &r)?
        };
        self.identity.fill(&mut resp.header, self.handle.raft_term());
        Ok(Response::new(resp))
    }

    type RangeStreamStream = futures::stream::Empty<Result<PbRangeStreamResponse, Status>>;

    /// Not in etcd 3.4 or 3.5 (whose API the node speaks): answered as those versions answer a
    /// method they do not have.
    async fn range_stream(
        &self,
        _req: Request<PbRangeRequest>,
    ) -> Result<Response<Self::RangeStreamStream>, Status> {
        Err(Status::unimplemented("unknown method RangeStream for service etcdserverpb.KV"))
    }

    async fn put(&self, req: Request<PbPutRequest>) -> Result<Response<PbPutResponse>, Status> {
        let r = req.into_inner();
        apply::validate_put(&r)?;
        match self.write(Write::Put(r)).await? {
            WriteResponse::Put(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn delete_range(
        &self,
        req: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        let r = req.into_inner();
        apply::validate_delete(&r)?;
        match self.write(Write::Delete(r)).await? {
            WriteResponse::Delete(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn txn(&self, req: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        let r = req.into_inner();
        apply::validate_txn(&r, self.max_txn_ops)?;
        match self.write(Write::Txn(r)).await? {
            WriteResponse::Txn(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn compact(
        &self,
        req: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        match self.write(Write::Compact(req.into_inner())).await? {
            WriteResponse::Compact(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }
}
