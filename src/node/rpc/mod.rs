//! etcd's gRPC services, one file per service.

pub mod kv;

use etcd_client::proto::PbResponseHeader;

/// What every response header says about the member that answered.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
}

impl Identity {
    /// Completes a header the apply layer filled with the revision.
    pub fn fill(&self, header: &mut Option<PbResponseHeader>, raft_term: u64) {
        let h = header.get_or_insert_with(PbResponseHeader::default);
        h.cluster_id = self.cluster_id;
        h.member_id = self.member_id;
        h.raft_term = raft_term;
    }
}
