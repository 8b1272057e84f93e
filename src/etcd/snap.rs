//! etcd 3.4's raft snapshot files (etcdserver/api/snap): `<term>-<index>.snap` (16 hex digits each)
//! in member/snap, each a snappb.Snapshot {crc: CRC-32C of data, data: raftpb.Snapshot}, whose data
//! is the v2 store as JSON. etcd 3.4 keeps its membership there (/0/members/<id>/raftAttributes and
//! attributes), and a member changed since is in the WAL's configuration changes and publish
//! requests. Read only.

use std::path::{Path, PathBuf};

use prost::Message;
use serde::Deserialize;

use super::wal::SnapshotMark;

#[derive(Clone, PartialEq, prost::Message)]
struct SnapPb {
    #[prost(uint32, tag = "1")]
    crc: u32,
    #[prost(bytes = "vec", tag = "2")]
    data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftSnapshot {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    metadata: Option<RaftSnapshotMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RaftSnapshotMetadata {
    #[prost(message, optional, tag = "1")]
    conf_state: Option<ConfState>,
    #[prost(uint64, tag = "2")]
    index: u64,
    #[prost(uint64, tag = "3")]
    term: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ConfState {
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    voters: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    learners: Vec<u64>,
}

/// A member as etcd 3.4 writes it in JSON (membership.Member, and ConfigChangeContext's isPromote).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub id: u64,
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(default, rename = "isLearner")]
    pub is_learner: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
    #[serde(default, rename = "isPromote")]
    pub is_promote: bool,
}

/// A raft snapshot file: where the log starts, and the membership then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    pub path: PathBuf,
    pub mark: SnapshotMark,
    pub members: Vec<Member>,
}

/// `%016x-%016x.snap`: term and index.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let (term, index) = name.strip_suffix(".snap")?.split_once('-')?;
    if term.len() != 16 || index.len() != 16 {
        return None;
    }
    Some((u64::from_str_radix(term, 16).ok()?, u64::from_str_radix(index, 16).ok()?))
}

/// The newest snapshot file in `dir` (etcd's Snapshotter.Load), or None if there is none. A damaged
/// newest file is an error naming it (etcd would set it aside and fall back to an older one,
/// renaming it; nothing here writes).
pub fn newest(dir: &Path) -> Result<Option<SnapFile>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for item in read {
        let item = item.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if parse_name(&name).is_some() {
            names.push(name);
        }
    }
    names.sort();
    let Some(name) = names.pop() else { return Ok(None) };
    let path = dir.join(name);
    read_file(&path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

/// One snapshot file, checked as etcd's snap.Read checks it.
pub fn read_file(path: &Path) -> Result<SnapFile, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    // etcd's snapshots hold the v2 store: far below this. A bigger file is not one.
    if size > 1 << 30 {
        return Err(format!("{size} bytes is too big for a raft snapshot of etcd's v2 store"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Err("snap: empty snapshot".into());
    }
    let pb = SnapPb::decode(bytes.as_slice()).map_err(|e| format!("snap: the file does not decode: {e}"))?;
    if pb.data.is_empty() || pb.crc == 0 {
        return Err("snap: empty snapshot".into());
    }
    let crc = super::wal::crc32c_update(0, &pb.data);
    if crc != pb.crc {
        return Err(format!(
            "snap: crc mismatch (the file says {:#010x}, its data gives {crc:#010x})",
            pb.crc
        ));
    }
    let snapshot = RaftSnapshot::decode(pb.data.as_slice())
        .map_err(|e| format!("the raft snapshot does not decode: {e}"))?;
    let metadata = snapshot.metadata.unwrap_or_default();
    let members = members_from_v2(&snapshot.data)?;
    let conf = metadata.conf_state.unwrap_or_default();
    let mut in_conf: Vec<u64> = conf.voters.iter().chain(&conf.learners).copied().collect();
    in_conf.sort_unstable();
    let mut listed: Vec<u64> = members.iter().map(|m| m.id).collect();
    listed.sort_unstable();
    if in_conf != listed {
        return Err(format!(
            "the v2 store's members ({}) are not raft's configuration ({})",
            hex_list(&listed),
            hex_list(&in_conf)
        ));
    }
    Ok(SnapFile {
        path: path.to_path_buf(),
        mark: SnapshotMark { index: metadata.index, term: metadata.term },
        members,
    })
}

fn hex_list(ids: &[u64]) -> String {
    ids.iter().map(|id| format!("{id:x}")).collect::<Vec<_>>().join(",")
}

/// The members of etcd's v2 store JSON (store.Save): each /0/members/<hex id> directory's
/// raftAttributes (peer URLs, learner) and attributes (name, client URLs).
pub fn members_from_v2(json: &[u8]) -> Result<Vec<Member>, String> {
    let root: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("the v2 store is not JSON: {e}"))?;
    let child = |node: &serde_json::Value, name: &str| -> Option<serde_json::Value> {
        node.get("Children")?.get(name).cloned()
    };
    let Some(members) = root.get("Root").and_then(|r| child(r, "0")).and_then(|z| child(&z, "members"))
    else {
        return Ok(Vec::new());
    };
    let Some(dirs) = members.get("Children").and_then(|c| c.as_object()) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (hex, dir) in dirs {
        let id = u64::from_str_radix(hex, 16)
            .map_err(|_| format!("member {hex:?} in the v2 store is not a hex ID"))?;
        let value = |name: &str| -> Result<Member, String> {
            match child(dir, name).and_then(|n| n.get("Value").and_then(|v| v.as_str()).map(str::to_string)) {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| format!("member {hex}'s {name} in the v2 store: {e}")),
                None => Ok(Member::default()),
            }
        };
        let raft = value("raftAttributes")?;
        let attrs = value("attributes")?;
        out.push(Member {
            id,
            peer_urls: raft.peer_urls,
            is_learner: raft.is_learner,
            name: attrs.name,
            client_urls: attrs.client_urls,
            is_promote: false,
        });
    }
    out.sort_by_key(|m| m.id);
    Ok(out)
}

/// A configuration change's context: the member (ConfigChangeContext for adds and promotions, a
/// Member for updates).
pub fn conf_change_member(context: &[u8]) -> Result<Member, String> {
    serde_json::from_slice(context)
        .map_err(|e| format!("the member in a configuration change is not etcd's JSON: {e}"))
}

/// Test support: a snapshot file's bytes, as etcd's snapshotter writes them.
pub fn encode_file(mark: SnapshotMark, voters: &[u64], v2_store: &[u8]) -> Vec<u8> {
    let snapshot = RaftSnapshot {
        data: v2_store.to_vec(),
        metadata: Some(RaftSnapshotMetadata {
            conf_state: Some(ConfState { voters: voters.to_vec(), learners: Vec::new() }),
            index: mark.index,
            term: mark.term,
        }),
    };
    let data = snapshot.encode_to_vec();
    SnapPb { crc: super::wal::crc32c_update(0, &data), data }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = r#"{"Root":{"Path":"/","Children":{"0":{"Path":"/0","Children":{"members":{"Path":"/0/members","Children":{
        "8e9e05c52164694d":{"Path":"/0/members/8e9e05c52164694d","Children":{
            "raftAttributes":{"Path":"/0/members/8e9e05c52164694d/raftAttributes","Value":"{\"peerURLs\":[\"http://localhost:2380\"]}","Children":null},
            "attributes":{"Path":"/0/members/8e9e05c52164694d/attributes","Value":"{\"name\":\"default\",\"clientURLs\":[\"http://localhost:2379\"]}","Children":null}}}}}}},
        "1":{"Path":"/1","Children":{}}}},"CurrentIndex":1}"#;

    #[test]
    fn reads_the_membership_of_a_snapshot_file() {
        let dir = tempfile::tempdir().unwrap();
        let mark = SnapshotMark { index: 1, term: 1 };
        std::fs::write(dir.path().join("db"), b"not a snapshot").unwrap();
        std::fs::write(
            dir.path().join("0000000000000001-0000000000000001.snap"),
            encode_file(mark, &[0x8e9e05c52164694d], STORE.as_bytes()),
        )
        .unwrap();
        let s = newest(dir.path()).unwrap().unwrap();
        assert_eq!(s.mark, mark);
        assert_eq!(
            s.members,
            vec![Member {
                id: 0x8e9e05c52164694d,
                peer_urls: vec!["http://localhost:2380".into()],
                name: "default".into(),
                client_urls: vec!["http://localhost:2379".into()],
                ..Member::default()
            }]
        );
    }

    #[test]
    fn damaged_snapshot_files_are_errors_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0000000000000001-0000000000000001.snap");
        let whole = encode_file(SnapshotMark { index: 1, term: 1 }, &[0x8e9e05c52164694d], STORE.as_bytes());
        for n in 0..whole.len() {
            std::fs::write(&path, &whole[..n]).unwrap();
            assert!(read_file(&path).is_err(), "cut at {n}");
        }
        for bit in 0..whole.len() * 8 {
            let mut b = whole.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, &b).unwrap();
            let _ = read_file(&path);
        }
        // The wrong membership for raft's configuration is refused.
        std::fs::write(&path, encode_file(SnapshotMark { index: 1, term: 1 }, &[5], STORE.as_bytes()))
            .unwrap();
        assert!(read_file(&path).unwrap_err().contains("not raft's configuration"));
    }

    #[test]
    fn conf_change_contexts_are_etcds_json() {
        let m = conf_change_member(br#"{"id":10276657743932975437,"peerURLs":["http://localhost:2380"],"name":"default","isPromote":true}"#)
            .unwrap();
        assert_eq!(m.id, 0x8e9e05c52164694d);
        assert!(m.is_promote);
        assert!(conf_change_member(b"{").is_err());
    }
}
