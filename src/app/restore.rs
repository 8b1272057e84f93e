//! The restore wizard: from a snapshot file and the cluster's members, the commands that rebuild the
//! cluster from it, member by member, as etcd's disaster-recovery runbook has them (every member
//! restored from the same file into a new data dir, with a new cluster token, then started on it);
//! for `etcdeck demo`, it can run them itself on the demo's members. This file holds the plan and
//! the wizard's steps; update/restore.rs moves through them (pure: the file check, the run and the
//! restarts are effects).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::app::cluster::MemberInfo;
use crate::app::edit::shell_quote;
use crate::app::snapshot::{CheckedSnapshot, SnapshotFormat};

/// The program whose restore command the wizard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `etcdeck snapshot restore`, for etcdeck nodes.
    Etcdeck,
    /// etcd 3.4: `etcdctl snapshot restore` (etcdutl came with 3.5).
    Etcdctl,
    /// etcd 3.5 and later: `etcdutl snapshot restore`.
    Etcdutl,
}

impl Tool {
    /// The tools that restore a file of this format; all three while the format is not known yet.
    pub fn for_format(format: Option<SnapshotFormat>) -> &'static [Tool] {
        match format {
            Some(SnapshotFormat::Etcdeck) => &[Tool::Etcdeck],
            // etcdeck restores etcd's snapshots too (and a db copy with --skip-hash-check).
            Some(SnapshotFormat::EtcdSnapshot | SnapshotFormat::EtcdDbCopy) => {
                &[Tool::Etcdctl, Tool::Etcdutl, Tool::Etcdeck]
            }
            None => &[Tool::Etcdeck, Tool::Etcdctl, Tool::Etcdutl],
        }
    }

    /// The command that restores a snapshot, and the etcd versions it comes with.
    pub fn program(self) -> (&'static str, &'static str) {
        match self {
            Tool::Etcdeck => ("etcdeck snapshot restore", "etcdeck"),
            Tool::Etcdctl => ("ETCDCTL_API=3 etcdctl snapshot restore", "etcd 3.4"),
            Tool::Etcdutl => ("etcdutl snapshot restore", "etcd 3.5 and later"),
        }
    }

    /// The next of `tools` after this one (the first, if this one is not among them).
    pub fn next_of(self, tools: &[Tool]) -> Tool {
        let at = tools.iter().position(|t| *t == self).map_or(0, |i| i + 1);
        tools.get(at % tools.len().max(1)).copied().unwrap_or(self)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Tool::Etcdeck => "etcdeck nodes",
            Tool::Etcdctl => "etcd 3.4 (etcdctl)",
            Tool::Etcdutl => "etcd 3.5 or later (etcdutl)",
        }
    }
}

/// What is restored, and as which members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    pub file: PathBuf,
    /// The new cluster's token: the restored members form a new cluster (new IDs), which never
    /// mistakes the old one's members for its own.
    pub token: String,
    /// The voting members: name and peer URLs, as the new cluster's --initial-cluster.
    pub members: Vec<(String, Vec<String>)>,
    /// Members the restore does not bring back, and why.
    pub left_out: Vec<String>,
}

impl RestorePlan {
    /// The plan for the members the dashboard lists: every named voter comes back as it is; a
    /// learner or an unstarted member does not (etcd's restore makes every member it names a voter).
    /// `wall`, the time of the plan, names the new cluster's token.
    pub fn for_members<'a>(
        listed: impl IntoIterator<Item = &'a MemberInfo>,
        wall: SystemTime,
        file: PathBuf,
    ) -> Result<RestorePlan, String> {
        let mut members = Vec::new();
        let mut left_out = Vec::new();
        for m in listed {
            if m.name.is_empty() {
                left_out.push(format!("{:x} has not started: add it again after the restore", m.id));
            } else if m.is_learner {
                left_out.push(format!("{} is a learner: add it again after the restore", m.name));
            } else if m.peer_urls.is_empty() {
                left_out.push(format!("{} has no peer URL", m.name));
            } else {
                members.push((m.name.clone(), m.peer_urls.clone()));
            }
        }
        if members.is_empty() {
            return Err("no voting member with a name and a peer URL to restore".into());
        }
        let stamp = humantime::format_rfc3339_seconds(wall).to_string();
        let stamp: String = stamp.chars().filter(char::is_ascii_digit).take(12).collect();
        Ok(RestorePlan { file, token: format!("etcd-cluster-restored-{stamp}"), members, left_out })
    }

    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .flat_map(|(name, urls)| urls.iter().map(move |u| format!("{name}={u}")))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The new data dir of a member: beside its old one, which stays until the restored cluster
    /// is known to be good.
    pub fn data_dir(name: &str) -> String {
        format!("{name}.restored.etcd")
    }

    /// The restore command of each member, in the plan's order; a db file copied out of a data dir
    /// (no SHA-256) needs --skip-hash-check.
    pub fn commands(&self, tool: Tool, format: Option<SnapshotFormat>) -> Vec<String> {
        let (program, _) = tool.program();
        let skip = if format == Some(SnapshotFormat::EtcdDbCopy) { " --skip-hash-check" } else { "" };
        let file = shell_quote(self.file.display().to_string().as_bytes());
        let cluster = shell_quote(self.initial_cluster().as_bytes());
        self.members
            .iter()
            .map(|(name, urls)| {
                format!(
                    "{program} {file} --name {} --initial-cluster {cluster} --initial-cluster-token {} --initial-advertise-peer-urls {} --data-dir {}{skip}",
                    shell_quote(name.as_bytes()),
                    shell_quote(self.token.as_bytes()),
                    shell_quote(urls.join(",").as_bytes()),
                    shell_quote(Self::data_dir(name).as_bytes()),
                )
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreWizard {
    /// The plan and its commands; `file` is what the check of the snapshot file found (None until
    /// it answers).
    Plan {
        plan: RestorePlan,
        tool: Tool,
        file: Option<Result<CheckedSnapshot, String>>,
    },
    /// Waiting for a deliberate yes to run it on the demo's members.
    Confirm {
        plan: RestorePlan,
    },
    Running {
        request: u64,
        plan: RestorePlan,
        stage: String,
    },
    Done {
        result: Result<String, String>,
    },
}

impl RestoreWizard {
    /// The format of the file in hand, once its check found one.
    pub fn format(file: &Option<Result<CheckedSnapshot, String>>) -> Option<SnapshotFormat> {
        file.as_ref().and_then(|f| f.as_ref().ok()).map(|c| c.format)
    }

    /// Whether the demo may run the restore of the file in hand itself: a snapshot with its
    /// SHA-256 to check (etcdeck's or etcd's), not a db copy.
    pub fn runs_in_demo(file: &Option<Result<CheckedSnapshot, String>>) -> bool {
        matches!(Self::format(file), Some(SnapshotFormat::Etcdeck | SnapshotFormat::EtcdSnapshot))
    }
}
