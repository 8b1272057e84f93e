//! Membership: raft's configuration as the store's members make it, and etcd's checks of a change
//! against the membership it applies to.

use etcd_client::proto::PbMember;
use raft::eraftpb::ConfState;

use crate::node::error::NodeError;
use crate::node::mvcc::store::Store;
use crate::node::raft::write::Write;

/// The raft membership the store's members make: voters and learners.
pub fn conf_state_of(store: &Store) -> ConfState {
    let mut cs = ConfState::default();
    for (id, m) in store.members() {
        if m.is_learner {
            cs.learners.push(*id);
        } else {
            cs.voters.push(*id);
        }
    }
    cs
}

/// etcd's checks of a membership change against the membership it applies to (its cluster's
/// ValidateConfigurationChange); made before proposing, and again when the entry is applied.
pub fn validate_member_change(store: &Store, write: &Write) -> Result<(), NodeError> {
    let members = store.members();
    let urls_taken = |m: &PbMember| {
        members
            .iter()
            .any(|(id, other)| *id != m.id && other.peer_urls.iter().any(|u| m.peer_ur_ls.contains(u)))
    };
    match write {
        Write::AddMember(m) => {
            if store.removed().contains(&m.id) {
                return Err(NodeError::MemberNotFound); // etcd: ErrIDRemoved, sent as "member not found"
            }
            if members.contains_key(&m.id) {
                return Err(NodeError::MemberExists);
            }
            if urls_taken(m) {
                return Err(NodeError::PeerUrlExists);
            }
            if m.is_learner && members.values().filter(|m| m.is_learner).count() >= MAX_LEARNERS {
                return Err(NodeError::TooManyLearners);
            }
        }
        Write::RemoveMember(m) | Write::PromoteMember(m) | Write::UpdateMember(m) => {
            if store.removed().contains(&m.id) {
                return Err(NodeError::MemberNotFound); // etcd: ErrIDRemoved, sent as "member not found"
            }
            let Some(current) = members.get(&m.id) else { return Err(NodeError::MemberNotFound) };
            if matches!(write, Write::PromoteMember(_)) && !current.is_learner {
                return Err(NodeError::MemberNotLearner);
            }
            if matches!(write, Write::UpdateMember(_)) && urls_taken(m) {
                return Err(NodeError::PeerUrlExists);
            }
        }
        _ => {}
    }
    Ok(())
}

/// etcd 3.4 allows one learner at a time (membership's maxLearners).
const MAX_LEARNERS: usize = 1;
