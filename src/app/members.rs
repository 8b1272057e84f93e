//! Member maintenance from the members view: add (as a learner unless asked otherwise), promote,
//! remove, update peer URLs, move the leader. Each goes through a dialog that says what it does to
//! the quorum, shows the etcdctl command that does the same, and needs an explicit yes.

use crate::app::cluster::MemberInfo;
use crate::app::edit::shell_quote;
use crate::app::note::Note;

/// A membership change, with what the dialog shows about its member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberOp {
    /// `client_urls` only go into the start command the result shows.
    Add {
        name: String,
        peer_urls: Vec<String>,
        client_urls: Vec<String>,
        learner: bool,
    },
    Promote {
        id: u64,
        name: String,
    },
    Remove {
        id: u64,
        name: String,
    },
    Update {
        id: u64,
        name: String,
        peer_urls: Vec<String>,
    },
    /// Sent to the leader's own endpoint (`leader`), as etcdctl needs the leader among its endpoints.
    MoveLeader {
        id: u64,
        name: String,
        leader: String,
    },
    /// Maintenance: drop the history before `revision`.
    Compact {
        revision: i64,
    },
    /// Maintenance: rewrite one member's database (on its own endpoint).
    Defragment {
        id: u64,
        name: String,
        endpoint: String,
    },
    /// Maintenance: rewrite every member's database, one at a time in this order (followers first,
    /// the leader last), each waited on until healthy before the next; (id, name, endpoint).
    DefragmentAll {
        members: Vec<(u64, String, String)>,
    },
    /// Maintenance: clear these alarms (etcdctl's `alarm disarm` clears every one raised).
    Disarm {
        alarms: Vec<crate::app::cluster::Alarm>,
    },
    /// A change to users and roles (the users and roles view).
    Auth(crate::app::auth::AuthOp),
    /// `etcdeck demo`: kill the member's process with SIGKILL, as a crash (its data stays).
    Kill {
        id: u64,
        name: String,
    },
}

/// What a membership change reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOutcome {
    /// The new member's ID and the membership after the add.
    Added {
        id: u64,
        members: Vec<MemberInfo>,
    },
    Done,
    /// What was done, a line per step (a rolling defragmentation's members).
    Report(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberDialog {
    /// Waiting for the user's yes. With `deliberate`, only `y` confirms (Enter does not).
    Confirm { op: MemberOp, notes: Vec<Note>, deliberate: bool },
    Running {
        request: u64,
        op: MemberOp,
        /// Steps done so far (a rolling defragmentation's members).
        progress: Vec<String>,
    },
    /// The answer: for an add, the commands that start the new member; or etcd's error.
    Result { op: MemberOp, result: Result<Vec<String>, String> },
    /// A damaged member's replacement, step by step.
    Replace(crate::app::replace::Replace),
}

fn label(name: &str, id: u64) -> String {
    if name.is_empty() {
        format!("{id:x}")
    } else {
        format!("{name} ({id:x})")
    }
}

impl MemberOp {
    pub fn describe(&self) -> String {
        match self {
            MemberOp::Add { name, peer_urls, learner, .. } => format!(
                "add {} {name} with peer URLs {}",
                if *learner { "learner" } else { "voting member" },
                peer_urls.join(",")
            ),
            MemberOp::Promote { id, name } => format!("promote learner {}", label(name, *id)),
            MemberOp::Remove { id, name } => format!("remove member {}", label(name, *id)),
            MemberOp::Update { id, name, peer_urls } => {
                format!("set the peer URLs of {} to {}", label(name, *id), peer_urls.join(","))
            }
            MemberOp::MoveLeader { id, name, .. } => format!("move the leadership to {}", label(name, *id)),
            MemberOp::Compact { revision } => format!("compact the history before revision {revision}"),
            MemberOp::Defragment { id, name, .. } => format!("defragment {}", label(name, *id)),
            MemberOp::DefragmentAll { members } => {
                let names: Vec<String> = members.iter().map(|(id, name, _)| label(name, *id)).collect();
                format!("defragment every member in turn: {}", names.join(", then "))
            }
            MemberOp::Disarm { alarms } => {
                let each: Vec<String> =
                    alarms.iter().map(|a| format!("{} of {:x}", a.kind, a.member_id)).collect();
                format!("disarm {}", each.join(", "))
            }
            MemberOp::Auth(op) => op.describe(),
            MemberOp::Kill { id, name } => format!("kill member {} (SIGKILL, as a crash)", label(name, *id)),
        }
    }

    /// What the line under "the same …:" names: etcdctl's command, or what an operator does by hand.
    pub fn same_with(&self) -> &'static str {
        match self {
            MemberOp::Kill { .. } => "the same by hand",
            _ => "the same with etcdctl",
        }
    }

    /// The etcdctl command that does the same.
    pub fn etcdctl(&self, endpoints: &[String]) -> String {
        let eps = format!("etcdctl --endpoints={}", endpoints.join(","));
        match self {
            MemberOp::Add { name, peer_urls, learner, .. } => format!(
                "{eps} member add {} {}--peer-urls={}",
                shell_quote(name.as_bytes()),
                if *learner { "--learner " } else { "" },
                peer_urls.join(",")
            ),
            MemberOp::Promote { id, .. } => format!("{eps} member promote {id:x}"),
            MemberOp::Remove { id, .. } => format!("{eps} member remove {id:x}"),
            MemberOp::Update { id, peer_urls, .. } => {
                format!("{eps} member update {id:x} --peer-urls={}", peer_urls.join(","))
            }
            MemberOp::MoveLeader { id, leader, .. } => {
                format!("etcdctl --endpoints={leader} move-leader {id:x}")
            }
            MemberOp::Compact { revision } => format!("{eps} compaction {revision}"),
            MemberOp::Defragment { endpoint, .. } => format!("etcdctl --endpoints={endpoint} defrag"),
            // etcdctl defragments the endpoints one after another, in the order given.
            MemberOp::DefragmentAll { members } => {
                let eps: Vec<&str> = members.iter().map(|(_, _, e)| e.as_str()).collect();
                format!("etcdctl --endpoints={} defrag", eps.join(","))
            }
            MemberOp::Disarm { .. } => format!("{eps} alarm disarm"),
            MemberOp::Auth(op) => op.etcdctl().replacen("etcdctl", &eps, 1),
            MemberOp::Kill { name, .. } => format!("kill -9 <the pid of {name}'s process>"),
        }
    }
}

/// The commands that start an added member, as `etcdctl member add` prints its settings: the
/// `ETCD_*` settings, then one line for etcd and one for an etcdeck node.
pub fn start_commands(op: &MemberOp, new_id: u64, members: &[MemberInfo]) -> Vec<String> {
    let MemberOp::Add { name, peer_urls, client_urls, .. } = op else { return Vec::new() };
    let settings = [
        ("ETCD_NAME", name.clone()),
        ("ETCD_INITIAL_CLUSTER", initial_cluster_after_add(name, new_id, members)),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", peer_urls.join(",")),
        ("ETCD_INITIAL_CLUSTER_STATE", "existing".to_string()),
    ];
    let env: Vec<String> =
        settings.iter().map(|(k, v)| format!("{k}={}", shell_quote(v.as_bytes()))).collect();
    let flags = format!(
        "--listen-peer-urls {} --listen-client-urls {} --advertise-client-urls {} --data-dir {}",
        peer_urls.join(","),
        client_urls.join(","),
        client_urls.join(","),
        shell_quote(format!("{name}.etcd").as_bytes())
    );
    let mut lines: Vec<String> = settings.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    lines.push(String::new());
    lines.push(format!("etcd:    {} etcd {flags}", env.join(" ")));
    lines.push(format!("etcdeck: {} etcdeck node {flags}", env.join(" ")));
    lines
}

/// etcdctl's ETCD_INITIAL_CLUSTER after an add: every member's peer URLs under its name, the new
/// one's (`new_id`) under `name` (other unstarted members have none).
pub fn initial_cluster_after_add(name: &str, new_id: u64, members: &[MemberInfo]) -> String {
    let initial: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let n = if m.id == new_id { name.to_string() } else { m.name.clone() };
            m.peer_urls.iter().map(move |u| format!("{n}={u}"))
        })
        .collect();
    initial.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, name: &str, peer: &str) -> MemberInfo {
        MemberInfo {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    #[test]
    fn an_add_says_its_etcdctl_and_how_to_start_the_member() {
        let op = MemberOp::Add {
            name: "n4".into(),
            peer_urls: vec!["http://10.0.0.4:2380".into()],
            client_urls: vec!["http://10.0.0.4:2379".into()],
            learner: true,
        };
        assert_eq!(
            op.etcdctl(&["http://10.0.0.1:2379".into()]),
            "etcdctl --endpoints=http://10.0.0.1:2379 member add n4 --learner --peer-urls=http://10.0.0.4:2380"
        );
        let members = vec![info(1, "n1", "http://10.0.0.1:2380"), info(4, "", "http://10.0.0.4:2380")];
        let lines = start_commands(&op, 4, &members);
        assert_eq!(lines[0], "ETCD_NAME=\"n4\"");
        assert_eq!(lines[1], "ETCD_INITIAL_CLUSTER=\"n1=http://10.0.0.1:2380,n4=http://10.0.0.4:2380\"");
        assert_eq!(lines[3], "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
        assert!(
            lines[5].starts_with("etcd:    ETCD_NAME=n4 ETCD_INITIAL_CLUSTER=n1=http://10.0.0.1:2380,n4=")
        );
        assert!(lines[6].contains(" etcdeck node --listen-peer-urls http://10.0.0.4:2380 --listen-client-urls http://10.0.0.4:2379 --advertise-client-urls http://10.0.0.4:2379 --data-dir n4.etcd"), "{}", lines[6]);
        let op = MemberOp::MoveLeader { id: 0xab, name: "n2".into(), leader: "http://l:2379".into() };
        assert_eq!(op.etcdctl(&[]), "etcdctl --endpoints=http://l:2379 move-leader ab");
    }
}
