//! Replacing a damaged member, as etcd's runbook has it: remove it from the cluster, wipe its data
//! dir, add it again under the same name and peer URLs, start it with --initial-cluster-state
//! existing on the empty dir, and wait until it answers healthy. Each step shows what an operator
//! would type, waits for its answer, and the first error stops the rest. In `etcdeck demo` the
//! console does every step; elsewhere it does the cluster's (remove, add, wait) and names the ones
//! done on the member's machine. This file holds the plan and its steps; update/replace.rs moves
//! through them (pure, as `update` is: the steps are effects).

use std::time::{Duration, Instant};

use crate::app::note::Note;

/// How long the demo waits for the new member to answer healthy before it calls the step failed.
pub const DEMO_WAIT: Duration = Duration::from_secs(60);
/// etcd refuses an add ("unhealthy cluster") until the member asked has been connected to every
/// voting member for its health interval (5 s); right after a removal that can take a moment, so
/// the add is tried again every second for this long, as an operator would.
pub const ADD_RETRY_FOR: Duration = Duration::from_secs(30);
pub const ADD_RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Stop,
    Remove,
    Wipe,
    Add,
    Start,
    Wait,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Waiting,
    Running,
    Done(String),
    /// Done on the member's machine by the operator, not by the console.
    Yours,
    Failed(String),
}

/// One step: what it does, and the same by hand (an etcdctl command where etcdctl does it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub what: String,
    pub same: Vec<String>,
    pub state: StepState,
}

/// What the demo's process table is asked during a replacement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcessStep {
    /// Stop the member's process (nothing to do if it is not running).
    Stop { name: String },
    /// Move its data dir aside (kept for a look at the damage), so it starts on an empty one.
    Wipe { name: String },
    /// Start it on the empty data dir as a new member of the existing cluster.
    Start { name: String, initial_cluster: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    /// The member replaced, as the table showed it.
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// Whether the console runs the member's process (etcdeck demo).
    pub demo: bool,
    /// What removing it does to the quorum.
    pub notes: Vec<Note>,
    pub steps: Vec<Step>,
    pub confirmed: bool,
    /// The request of the step in flight.
    pub request: u64,
    /// The new member's ID, once it is added.
    pub new_id: Option<u64>,
    /// The cluster the new member joins (its --initial-cluster), once it is added.
    pub initial_cluster: String,
    pub waiting_since: Option<Instant>,
    /// When the add was first tried, and when it is tried again after etcd's "unhealthy cluster".
    pub add_first_try: Option<Instant>,
    pub add_retry_at: Option<Instant>,
}

impl Replace {
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.state, StepState::Failed(_)))
    }

    /// Every step done (or the operator's), or one failed: nothing more will happen.
    pub fn finished(&self) -> bool {
        self.failed() || self.steps.iter().all(|s| matches!(s.state, StepState::Done(_) | StepState::Yours))
    }

    pub fn running(&mut self) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.state == StepState::Running)
    }
}
