//! The KV service: etcd's checks before raft, serializable reads from the store, linearizable reads
//! after a ReadIndex, and writes through raft.

use etcd_client::proto::{
    PbCompactionRequest, PbCompactionResponse, PbDeleteRequest, PbDeleteResponse, PbKvService, PbPutRequest,
    PbPutResponse, PbRangeRequest, PbRangeResponse, PbRangeStreamResponse, PbTxnRequest, PbTxnResponse,
};
use tonic::{Request, Response, Status};

use crate::node::error::NodeError;
use crate::node::metrics::inc;
use crate::node::mvcc::apply;
use crate::node::raft::write::{Write, WriteResponse};
use crate::node::rpc::ctx::{mismatched, Ctx};

pub struct KvService {
    pub ctx: Ctx,
}

#[tonic::async_trait]
impl PbKvService for KvService {
    async fn range(&self, req: Request<PbRangeRequest>) -> Result<Response<PbRangeResponse>, Status> {
        apply::validate_range(req.get_ref())?;
        let h = &self.ctx.handle;
        inc(&h.metrics.range_total);
        if !req.get_ref().serializable {
            if h.status.is_learner.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(NodeError::NotSupportedForLearner.into());
            }
            h.read_index().await?;
        }
        self.ctx.check_read(&req, &req.get_ref().key, &req.get_ref().range_end)?;
        let r = req.into_inner();
        let mut resp = apply::apply_range(&*h.read_store()?, &r)?;
        self.ctx.identity.fill(&mut resp.header, h.raft_term());
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
        apply::validate_put(req.get_ref())?;
        inc(&self.ctx.handle.metrics.put_total);
        let write = self.ctx.as_caller(req, Write::Put)?;
        match self.ctx.write(write).await? {
            WriteResponse::Put(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn delete_range(
        &self,
        req: Request<PbDeleteRequest>,
    ) -> Result<Response<PbDeleteResponse>, Status> {
        apply::validate_delete(req.get_ref())?;
        inc(&self.ctx.handle.metrics.delete_total);
        let write = self.ctx.as_caller(req, Write::Delete)?;
        match self.ctx.write(write).await? {
            WriteResponse::Delete(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn txn(&self, req: Request<PbTxnRequest>) -> Result<Response<PbTxnResponse>, Status> {
        apply::validate_txn(req.get_ref(), self.ctx.max_txn_ops)?;
        inc(&self.ctx.handle.metrics.txn_total);
        let write = self.ctx.as_caller(req, Write::Txn)?;
        match self.ctx.write(write).await? {
            WriteResponse::Txn(resp) => Ok(Response::new(resp)),
            _ => Err(mismatched()),
        }
    }

    async fn compact(
        &self,
        req: Request<PbCompactionRequest>,
    ) -> Result<Response<PbCompactionResponse>, Status> {
        // etcd 3.4 lets any client compact; once auth is on, this node lets its users (a
        // kube-apiserver's user compacts, root or not), not anonymous clients.
        self.ctx.check_user(&req)?;
        let (revision, physical) = (req.get_ref().revision, req.get_ref().physical);
        let resp = match self.ctx.write(Write::Compact(req.into_inner())).await? {
            WriteResponse::Compact(resp) => resp,
            _ => return Err(mismatched()),
        };
        // etcd answers a physical compaction once its records are gone (so hashes agree).
        while physical && self.ctx.handle.read_store()?.compaction_finished() < revision {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(Response::new(resp))
    }
}
