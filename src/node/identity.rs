//! What a data dir records about the member it belongs to (member/etcdeck-member.json): its name,
//! member and cluster IDs, peer URLs, the cluster's bootstrap membership, and where its store and
//! log live.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::node::config::NodeConfig;
use crate::node::idutil::{cluster_id, member_id};

pub const IDENTITY_FILE: &str = "etcdeck-member.json";

/// Where this node keeps its own files in a dir imported from etcd, under member/.
pub const ETCDECK_HOME: &str = "etcdeck";

/// What the data dir records about the member it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberIdentity {
    pub name: String,
    pub member_id: String,
    pub cluster_id: String,
    pub initial_cluster_token: String,
    pub peer_urls: Vec<String>,
    /// The members the cluster was bootstrapped with (this one included). Files written before
    /// peers existed have none: the member alone. For a member that joined a running cluster, the
    /// membership it found.
    #[serde(default)]
    pub members: Vec<InitialMember>,
    /// Whether the member joined a running cluster (--initial-cluster-state existing): it starts
    /// with no membership of its own and learns it from the leader.
    #[serde(default)]
    pub joined: bool,
    /// Whether the dir was etcd's, imported at the first start: the store and the log then live in
    /// member/etcdeck/, beside etcd's files, which are left as they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub beside_etcd: bool,
}

/// A member of the bootstrap configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitialMember {
    pub name: String,
    pub id: String,
    pub peer_urls: Vec<String>,
}

impl MemberIdentity {
    /// Where this member's store and raft log live.
    pub fn dirs(&self, c: &NodeConfig) -> (PathBuf, PathBuf) {
        let member = c.data_dir.join("member");
        if self.beside_etcd {
            let home = member.join(ETCDECK_HOME);
            (home.join("db"), home.join("wal"))
        } else {
            (member.join("snap").join("db"), c.wal_dir())
        }
    }

    /// The bootstrap members: (ID, name, peer URLs).
    pub fn member_list(&self) -> Result<Vec<(u64, String, Vec<String>)>, String> {
        if self.members.is_empty() {
            let id = parse_hex(&self.member_id, "member ID")?;
            return Ok(vec![(id, self.name.clone(), self.peer_urls.clone())]);
        }
        self.members
            .iter()
            .map(|m| Ok((parse_hex(&m.id, "member ID")?, m.name.clone(), m.peer_urls.clone())))
            .collect()
    }
}

/// The members an --initial-cluster lists, with etcd's IDs for them and the token, and the
/// cluster's ID.
pub fn initial_members(
    cluster: &std::collections::BTreeMap<String, Vec<crate::etcd::urls::EtcdUrl>>,
    token: &str,
) -> (Vec<InitialMember>, u64) {
    let members: Vec<InitialMember> = cluster
        .iter()
        .map(|(name, urls)| {
            let peer_urls: Vec<String> = urls.iter().map(ToString::to_string).collect();
            InitialMember { name: name.clone(), id: format!("{:x}", member_id(&peer_urls, token)), peer_urls }
        })
        .collect();
    let ids: Vec<u64> = members.iter().map(|m| u64::from_str_radix(&m.id, 16).unwrap_or_default()).collect();
    (members, cluster_id(&ids))
}

pub fn parse_hex(text: &str, what: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16).map_err(|_| format!("{what} {text:?} is not a hex ID"))
}
