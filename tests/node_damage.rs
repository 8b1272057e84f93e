//! The damage matrix: acknowledged load, kill -9, one kind of damage to the member's data dir, and a
//! restart. The member either refuses to start, with a line naming the damaged file, or starts with
//! every acknowledged write and takes new ones: never a silent loss. In a 3-member cluster the
//! cluster keeps every acknowledged write, and a member that refused is replaced as the runbook says
//! (member remove, wipe, member add, start with --initial-cluster-state=existing) and then has them
//! all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};

use crate::node_cluster::{spawn_member, NodeCluster};
use crate::node_kv::within;
use crate::support::{http_get, EtcdeckNode};

/// Acknowledged puts made before the crash.
const LOAD: usize = 2000;

#[derive(Clone, Copy, Debug)]
enum Damage {
    ZeroAll,
    ZeroLast4k,
    Cut(u64),
    FlipMid,
    DeleteNewest,
    TruncateStore,
}

const DAMAGES: [Damage; 8] = [
    Damage::ZeroAll,
    Damage::ZeroLast4k,
    Damage::Cut(60),
    Damage::Cut(500),
    Damage::Cut(3000),
    Damage::FlipMid,
    Damage::DeleteNewest,
    Damage::TruncateStore,
];

impl Damage {
    fn name(self) -> String {
        match self {
            Damage::ZeroAll => "whole log zero-filled".into(),
            Damage::ZeroLast4k => "last 4 KB zero-filled".into(),
            Damage::Cut(n) => format!("tail cut by {n} bytes"),
            Damage::FlipMid => "one byte flipped mid-log".into(),
            Damage::DeleteNewest => "newest log file deleted".into(),
            Damage::TruncateStore => "store files truncated".into(),
        }
    }

    fn apply(self, data_dir: &Path) {
        let wal = files_under(&data_dir.join("member").join("wal"), ".wal");
        let newest = wal.last().cloned().expect("a log file");
        match self {
            Damage::ZeroAll => {
                for f in &wal {
                    let len = std::fs::metadata(f).expect("stat").len() as usize;
                    std::fs::write(f, vec![0u8; len]).expect("zero");
                }
            }
            Damage::ZeroLast4k => {
                let mut bytes = std::fs::read(&newest).expect("read");
                let from = bytes.len().saturating_sub(4096);
                bytes[from..].fill(0);
                std::fs::write(&newest, bytes).expect("write");
            }
            Damage::Cut(n) => {
                let f = std::fs::OpenOptions::new().write(true).open(&newest).expect("open");
                let len = f.metadata().expect("stat").len();
                f.set_len(len.saturating_sub(n)).expect("cut");
            }
            Damage::FlipMid => {
                let mut bytes = std::fs::read(&newest).expect("read");
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
                std::fs::write(&newest, bytes).expect("write");
            }
            Damage::DeleteNewest => std::fs::remove_file(&newest).expect("delete"),
            Damage::TruncateStore => {
                for f in files_under(&data_dir.join("member").join("snap"), "") {
                    let file = std::fs::OpenOptions::new().write(true).open(&f).expect("open");
                    let len = file.metadata().expect("stat").len();
                    file.set_len(len / 2).expect("truncate");
                }
            }
        }
    }
}

/// Regular files under `dir` whose names end in `suffix`, in name order.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, suffix));
        } else if p.to_string_lossy().ends_with(suffix) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Puts through `urls` from 8 writers until `LOAD` are acknowledged, then `crash`; returns the keys
/// whose puts were acknowledged.
pub(crate) async fn acked_puts(urls: Vec<String>, prefix: &str, crash: impl FnOnce()) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            let urls = urls.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let Ok(mut c) = Client::connect(urls, None).await else { return };
                for i in 0.. {
                    let key = format!("{prefix}{w}/{i}");
                    let put =
                        tokio::time::timeout(Duration::from_secs(5), c.put(key.as_str(), "v", None)).await;
                    match put {
                        Ok(Ok(_)) => acked.lock().expect("lock").push(key),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().expect("lock").len() < LOAD && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crash();
    let seen = acked.lock().expect("lock").len();
    assert!(seen >= LOAD, "only {seen} puts acknowledged in 30 s");
    // Writers still running go on through the members that are up; whatever they get acknowledged
    // counts too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for w in &writers {
        w.abort();
    }
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("lock").clone();
    acked
}

/// The keys under `prefix` that `url` does not hold, of `acked`. Asks again while the member answers
/// with an error (right after a leader is killed, reads time out until the next one is elected).
async fn missing(url: &str, prefix: &str, acked: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let mut c = within(Client::connect([url], None)).await.expect("connect");
        match within(c.get(prefix, Some(GetOptions::new().with_prefix().with_keys_only()))).await {
            Ok(got) => break got,
            Err(e) if Instant::now() < deadline => {
                eprintln!("get from {url}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("get from {url}: {e}"),
        }
    };
    let held: BTreeSet<String> = got.kvs().iter().map(|kv| kv.key_str().unwrap_or("").to_string()).collect();
    acked.iter().filter(|k| !held.contains(*k)).cloned().collect()
}

/// Whether a new put through `url` is acknowledged within 5 s.
async fn takes_a_put(url: &str) -> bool {
    let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(5), Client::connect([url], None)).await
    else {
        return false;
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), c.put("after/damage", "v", None)).await, Ok(Ok(_)))
}

#[derive(Debug)]
enum Outcome {
    /// Exited non-zero, its last log line naming a file of the data dir.
    Refused(String),
    /// Served again, with every acknowledged write, and took a new put.
    Started,
    /// Anything else: a silent loss, a refusal that names no file, a member that takes no writes
    /// or neither serves nor exits.
    Failed(String),
}

impl Outcome {
    fn failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// Restarts `node` over its damaged data dir and judges what it did.
async fn restart_after(node: &mut EtcdeckNode, prefix: &str, acked: &[String]) -> Outcome {
    let log_before = node.log_text().len();
    node.respawn();
    let addr = node.client_url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = node.exited() {
            let log = node.log_text();
            let said = log.get(log_before..).unwrap_or_default();
            let line = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            let dir = node.data_dir.display().to_string();
            if status.success() || !line.contains(&dir) {
                return Outcome::Failed(format!(
                    "exited ({status}) without naming a file of the data dir: {line}"
                ));
            }
            return Outcome::Refused(line);
        }
        if http_get(&addr, "/health").is_some_and(|b| b.contains("\"true\"")) {
            break;
        }
        if Instant::now() > deadline {
            node.kill();
            return Outcome::Failed("neither served nor refused in 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost = missing(&node.client_url, prefix, acked).await;
    if !lost.is_empty() {
        return Outcome::Failed(format!(
            "SILENT LOSS: started with {} of {} acknowledged puts missing, e.g. {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(3)]
        ));
    }
    if !takes_a_put(&node.client_url).await {
        return Outcome::Failed("started with every acknowledged put, but a new put timed out".into());
    }
    Outcome::Started
}

fn row(damage: Damage, member: &str, acked: usize, outcome: &Outcome, replaced: bool) -> String {
    let what = match outcome {
        Outcome::Refused(line) if replaced => {
            format!("refused: `{line}`; replaced (remove, wipe, add, existing): every acknowledged put there")
        }
        Outcome::Refused(line) => format!("refused: `{line}`"),
        Outcome::Started => format!("started, all {acked} acknowledged puts present, new puts taken"),
        Outcome::Failed(why) => format!("FAILED: {why}"),
    };
    format!("| {} | {member} | {what} |", damage.name())
}

/// Prints the table and fails if any row failed.
fn judge(table: &[(bool, String)]) {
    let text: Vec<&str> = table.iter().map(|(_, r)| r.as_str()).collect();
    eprintln!("{}", text.join("\n"));
    let failed: Vec<&str> = table.iter().filter(|(f, _)| *f).map(|(_, r)| r.as_str()).collect();
    assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), table.len(), failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_single_member_refuses_or_keeps_every_acknowledged_write() {
    let mut table = Vec::new();
    for damage in DAMAGES {
        let mut n = EtcdeckNode::start("single", &[]);
        let url = n.client_url.clone();
        let acked = acked_puts(vec![url], "d/", || n.kill()).await;
        damage.apply(&n.data_dir);
        let outcome = restart_after(&mut n, "d/", &acked).await;
        table.push((outcome.failed(), row(damage, "single member", acked.len(), &outcome, false)));
    }
    judge(&table);
}

/// The member named `name`'s ID and first peer URL, as `url`'s member list has them.
async fn member_of(url: &str, name: &str) -> (u64, String) {
    let mut c = within(Client::connect([url], None)).await.expect("connect");
    let list = within(c.member_list()).await.expect("member list");
    let m = list.members().iter().find(|m| m.name() == name).expect("the member");
    (m.id(), m.peer_urls()[0].clone())
}

/// The runbook's replacement of a damaged member: remove it, wipe its data dir, add it back with
/// the same peer URL, start it with --initial-cluster-state=existing.
async fn replace_member(cluster: &mut NodeCluster, i: usize) {
    let name = format!("n{}", i + 1);
    let survivor = cluster.urls(Some(i))[0].clone();
    let (id, peer) = member_of(&survivor, &name).await;
    let mut c = within(Client::connect(cluster.urls(Some(i)), None)).await.expect("connect");
    within(c.member_remove(id)).await.expect("member remove");
    let data = cluster.nodes[i].data_dir.clone();
    std::fs::remove_dir_all(&data).expect("wipe");
    // etcd's strict reconfiguration check refuses an add until the members have been connected for
    // 5 s ("unhealthy cluster"): ask again until then.
    let deadline = Instant::now() + Duration::from_secs(20);
    let added = loop {
        match within(c.member_add([peer.as_str()], None)).await {
            Ok(added) => break added,
            Err(e) if e.to_string().contains("unhealthy cluster") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("member add: {e}"),
        }
    };
    let initial: Vec<String> = added
        .member_list()
        .iter()
        .map(|m| {
            let n = if m.name().is_empty() { name.as_str() } else { m.name() };
            format!("{n}={}", m.peer_urls()[0])
        })
        .collect();
    let flags =
        [format!("--initial-cluster={}", initial.join(",")), "--initial-cluster-state=existing".into()];
    let mut node = spawn_member(&name, &data, &peer, &flags);
    node.wait_serving(Duration::from_secs(30));
    cluster.nodes[i] = node;
}

async fn leader_of(cluster: &NodeCluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, url) in cluster.urls(None).iter().enumerate() {
            if let Ok(Ok(mut c)) =
                tokio::time::timeout(Duration::from_secs(2), Client::connect([url], None)).await
            {
                if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), c.status()).await {
                    if s.header().is_some_and(|h| h.member_id() == s.leader()) {
                        return i;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn damaged_cluster_member(leader: bool) {
    let role = if leader { "leader of 3" } else { "follower of 3" };
    let mut table = Vec::new();
    for damage in DAMAGES {
        let mut cluster = NodeCluster::start(3, "damage");
        let l = leader_of(&cluster).await;
        let target = if leader { l } else { (l + 1) % 3 };
        let others = cluster.urls(Some(target));
        let acked = acked_puts(others.clone(), "d/", || cluster.nodes[target].kill()).await;
        damage.apply(&cluster.nodes[target].data_dir);
        let outcome = restart_after(&mut cluster.nodes[target], "d/", &acked).await;
        eprintln!("{role}, {}: {outcome:?}", damage.name());
        // Whatever the damaged member did, the cluster has every acknowledged write.
        for url in &others {
            let lost = missing(url, "d/", &acked).await;
            assert!(lost.is_empty(), "{}: the cluster lost {} acknowledged puts", damage.name(), lost.len());
        }
        if matches!(outcome, Outcome::Refused(_)) {
            replace_member(&mut cluster, target).await;
            let url = cluster.nodes[target].client_url.clone();
            let lost = missing(&url, "d/", &acked).await;
            assert!(lost.is_empty(), "{}: the replaced member lacks {} puts", damage.name(), lost.len());
            assert!(takes_a_put(&url).await, "{}: the replaced member takes no put", damage.name());
        }
        let replaced = matches!(outcome, Outcome::Refused(_));
        table.push((outcome.failed(), row(damage, role, acked.len(), &outcome, replaced)));
    }
    judge(&table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_follower_refuses_or_catches_up_and_the_cluster_keeps_every_write() {
    damaged_cluster_member(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_leader_refuses_or_catches_up_and_the_cluster_keeps_every_write() {
    damaged_cluster_member(true).await;
}
