//! The driver's early campaign: a follower whose leader's peer URL refuses connections (the
//! leader's process is gone) campaigns before an election timeout.

use std::time::Instant;

use raft::eraftpb::{Message as RaftMessage, MessageType};
use raft::StateRole;

use super::Driver;

/// Heartbeats a follower must miss, after the leader's peer URL refused it, before it campaigns
/// early (`leader_refused`): a leader that is alive sends one every heartbeat.
const EARLY_SILENCE: usize = 3;

impl Driver {
    /// The leader's peer address refused a connection: its process is gone, and waiting out an
    /// election timeout only keeps the cluster without a leader longer. A voting follower
    /// campaigns as a leader transfer does (no pre-vote round, and the others' check-quorum lease
    /// does not hold their votes back; their logs' up-to-dateness still does), once it has heard
    /// nothing from the leader for EARLY_SILENCE heartbeats, and two heartbeats later for each
    /// remaining voter before it, so they do not split the vote. A leader
    /// that is slow, paused or cut off does not refuse connections, and is not deposed so.
    pub(super) fn leader_refused(&mut self, id: u64) {
        let r = &self.raw.raft;
        if id != r.leader_id || r.state != StateRole::Follower || !r.promotable() || self.early.is_some() {
            return;
        }
        let mut others: Vec<u64> = r.prs().conf().voters().ids().iter().filter(|v| *v != id).collect();
        others.sort_unstable();
        let Some(rank) = others.iter().position(|v| *v == self.me) else { return };
        self.early = Some((id, Instant::now() + self.heartbeat * (2 * rank as u32)));
    }

    /// Campaigns once an early campaign is due (`leader_refused`) and the leader is silent:
    /// nothing heard from it for EARLY_SILENCE heartbeats, and no other leader since.
    pub(super) fn campaign_early(&mut self) {
        let Some((gone, at)) = self.early else { return };
        let r = &self.raw.raft;
        let follower =
            r.state == StateRole::Follower && (r.leader_id == gone || r.leader_id == raft::INVALID_ID);
        let silent = r.election_elapsed >= EARLY_SILENCE;
        // Due and not yet silent long enough: a little longer (a live leader is heard again within
        // a heartbeat, and then this gives up).
        let patience = self.heartbeat * 2 * EARLY_SILENCE as u32;
        if Instant::now() < at || (follower && !silent && at.elapsed() < patience) {
            return;
        }
        self.early = None;
        if !follower || !silent {
            return;
        }
        eprintln!(
            "etcdeck node: leader {gone:x}'s peer URL refuses connections (its process is gone): \
             campaigning now rather than after an election timeout"
        );
        // raft's own way to start an election at once: what a leader handing over sends.
        let timeout_now = RaftMessage {
            msg_type: MessageType::MsgTimeoutNow.into(),
            from: gone,
            to: self.me,
            term: r.term,
            ..Default::default()
        };
        let _ = self.raw.step(timeout_now);
    }
}
