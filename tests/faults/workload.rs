//! The clients, watchers and compactor that run while faults come and go, and what they record.
//!
//! Each client has one request in flight and writes values no one else writes (its number and a
//! sequence), so every value read or watched names the one operation that wrote it. A request that
//! times out or loses its connection is recorded as having an unknown outcome: it may or may not
//! have been applied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp, WatchOptions};

use super::Rng;

pub const KEYS: usize = 8;
const CLIENTS: usize = 6;
const WATCHERS: usize = 4;
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Revisions the compactor leaves behind the newest one.
const COMPACT_LAG: i64 = 2_000;
/// The client number of the final writes and reads made after the faults.
pub const FINAL_CLIENT: usize = 1_000;

pub fn key_name(k: usize) -> String {
    format!("/lin/k{k:02}")
}

pub fn value_text(v: u64) -> String {
    format!("v{v}")
}

/// The value a client wrote, from its text; 0 (never written) for anything else.
pub fn value_of(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_prefix('v'))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Debug)]
pub enum Call {
    Put {
        key: usize,
        val: u64,
        lease: i64,
    },
    Get {
        key: usize,
    },
    Delete {
        key: usize,
    },
    /// Put `val` if the key's mod revision is `expect` (0: the key does not exist).
    Cas {
        key: usize,
        expect: i64,
        val: u64,
    },
    Revoke {
        lease: i64,
    },
}

#[derive(Clone, Debug)]
pub enum Out {
    Put {
        rev: i64,
    },
    /// (value, mod revision, lease) of the key, and the response's revision.
    Get {
        kv: Option<(u64, i64, i64)>,
        rev: i64,
    },
    Delete {
        deleted: i64,
        rev: i64,
    },
    Cas {
        ok: bool,
        rev: i64,
    },
    Revoke {
        rev: i64,
    },
    /// Timed out or lost: may have been applied.
    Unknown(String),
    /// Refused: certainly not applied.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct Record {
    pub client: usize,
    pub call_ns: u64,
    pub ret_ns: u64,
    pub endpoint: usize,
    pub call: Call,
    pub out: Out,
}

#[derive(Clone, Debug)]
pub struct Ev {
    pub rev: i64,
    pub key: String,
    /// The value put, None for a delete.
    pub val: Option<u64>,
}

/// One watch stream's life: from its start revision until it broke, was compacted, or was
/// restarted elsewhere.
#[derive(Clone, Debug)]
pub struct Segment {
    pub watcher: usize,
    /// The member it watched.
    pub endpoint: usize,
    pub prefix: String,
    pub start: i64,
    pub compacted: Option<i64>,
    pub responses: Vec<Vec<Ev>>,
    pub end: String,
}

pub struct Shared {
    t0: Instant,
    pub records: Mutex<Vec<Record>>,
    pub segments: Mutex<Vec<Segment>>,
    pub latest: AtomicI64,
    stop: AtomicBool,
    abandon: AtomicBool,
    /// After the faults: the revision each watched key was last written at.
    targets: Mutex<Option<HashMap<usize, i64>>>,
    reached: Mutex<Vec<bool>>,
    pub compactions: Mutex<Vec<i64>>,
}

impl Shared {
    pub fn new(t0: Instant) -> Self {
        Shared {
            t0,
            records: Mutex::default(),
            segments: Mutex::default(),
            latest: AtomicI64::new(1),
            stop: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            targets: Mutex::new(None),
            reached: Mutex::new(vec![false; WATCHERS]),
            compactions: Mutex::default(),
        }
    }

    pub fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn saw(&self, rev: i64) {
        self.latest.fetch_max(rev, Relaxed);
    }

    /// The revision a watcher on `prefix` must reach before the run ends, once it is known.
    fn target(&self, prefix: &str) -> Option<i64> {
        let targets = self.targets.lock().unwrap();
        let t = targets.as_ref()?;
        Some(t.iter().filter(|(k, _)| key_name(**k).starts_with(prefix)).map(|(_, r)| *r).max().unwrap_or(0))
    }
}

pub struct Handles {
    clients: Vec<tokio::task::JoinHandle<()>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    compactor: tokio::task::JoinHandle<()>,
}

pub fn spawn(rt: &tokio::runtime::Runtime, urls: &[String], sh: Arc<Shared>, seed: u64) -> Handles {
    let clients = (0..CLIENTS)
        .map(|i| rt.spawn(client_loop(i, urls.to_vec(), sh.clone(), seed.wrapping_add(i as u64 * 7919))))
        .collect();
    let watchers = (0..WATCHERS)
        .map(|w| rt.spawn(watcher_loop(w, urls.to_vec(), sh.clone(), seed.wrapping_add(w as u64 * 104_729))))
        .collect();
    let compactor = rt.spawn(compactor(urls.to_vec(), sh));
    Handles { clients, watchers, compactor }
}

pub async fn connect(url: &str) -> Option<Client> {
    connect_with(url, false).await
}

/// As `connect`; with `require_leader`, watches end on a member that lost its leader (as
/// Kubernetes' and the console's watches do), so a watcher moves to a member that has one.
pub async fn connect_with(url: &str, require_leader: bool) -> Option<Client> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(OP_TIMEOUT)
        .with_require_leader(require_leader);
    match tokio::time::timeout(Duration::from_secs(2), Client::connect([url], Some(opts))).await {
        Ok(Ok(c)) => Some(c),
        _ => None,
    }
}

fn classify(e: etcd_client::Error) -> Out {
    use tonic::Code;
    match e {
        // The connection was refused: the request never left.
        etcd_client::Error::GRpcStatus(s)
            if s.code() == Code::Unavailable && s.message().contains("tcp connect error") =>
        {
            Out::Failed(format!("{:?}: {}", s.code(), s.message()))
        }
        etcd_client::Error::GRpcStatus(s)
            if matches!(
                s.code(),
                Code::NotFound | Code::OutOfRange | Code::InvalidArgument | Code::FailedPrecondition
            ) =>
        {
            Out::Failed(format!("{:?}: {}", s.code(), s.message()))
        }
        etcd_client::Error::GRpcStatus(s) => Out::Unknown(format!("{:?}: {}", s.code(), s.message())),
        other => Out::Unknown(other.to_string()),
    }
}

fn header_rev(h: Option<&etcd_client::ResponseHeader>) -> i64 {
    h.map(|h| h.revision()).unwrap_or(0)
}

async fn exec(c: &mut Client, call: &Call) -> Out {
    let r = match call {
        Call::Put { key, val, lease } => {
            let opts = (*lease != 0).then(|| PutOptions::new().with_lease(*lease));
            c.put(key_name(*key), value_text(*val), opts)
                .await
                .map(|r| Out::Put { rev: header_rev(r.header()) })
        }
        Call::Get { key } => c.get(key_name(*key), None).await.map(|r| Out::Get {
            kv: r.kvs().first().map(|kv| (value_of(kv.value()), kv.mod_revision(), kv.lease())),
            rev: header_rev(r.header()),
        }),
        Call::Delete { key } => c
            .delete(key_name(*key), None)
            .await
            .map(|r| Out::Delete { deleted: r.deleted(), rev: header_rev(r.header()) }),
        Call::Cas { key, expect, val } => {
            let k = key_name(*key);
            let txn = Txn::new()
                .when([Compare::mod_revision(k.clone(), CompareOp::Equal, *expect)])
                .and_then([TxnOp::put(k, value_text(*val), None)]);
            c.txn(txn).await.map(|r| Out::Cas { ok: r.succeeded(), rev: header_rev(r.header()) })
        }
        Call::Revoke { lease } => {
            c.lease_revoke(*lease).await.map(|r| Out::Revoke { rev: header_rev(r.header()) })
        }
    };
    r.unwrap_or_else(classify)
}

/// Runs `call` against `c`, records it, and returns its outcome.
pub async fn record(sh: &Shared, client: usize, endpoint: usize, c: &mut Client, call: Call) -> Out {
    let call_ns = sh.now();
    let out = tokio::time::timeout(OP_TIMEOUT, exec(c, &call))
        .await
        .unwrap_or_else(|_| Out::Unknown("timed out".into()));
    let ret_ns = sh.now();
    match &out {
        Out::Put { rev }
        | Out::Get { rev, .. }
        | Out::Delete { rev, .. }
        | Out::Cas { rev, .. }
        | Out::Revoke { rev } => sh.saw(*rev),
        _ => {}
    }
    sh.records.lock().unwrap().push(Record { client, call_ns, ret_ns, endpoint, call, out: out.clone() });
    out
}

async fn client_loop(id: usize, urls: Vec<String>, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let n = urls.len();
    let mut ep = id % n;
    let mut client: Option<Client> = None;
    let mut seq: u64 = 0;
    let mut lease: Option<i64> = None;
    // The mod revision this client last saw for each key: what its compare-and-swaps expect.
    let mut seen = [0i64; KEYS];
    while !sh.stop.load(Relaxed) {
        let Some(c) = client.as_mut() else {
            client = connect(&urls[ep]).await;
            if client.is_none() {
                ep = (ep + 1) % n;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        };
        let key = rng.below(KEYS as u64) as usize;
        seq += 1;
        let val = ((id as u64 + 1) << 32) | seq;
        let call = match rng.below(100) {
            0..30 => Call::Put { key, val, lease: 0 },
            30..55 => Call::Get { key },
            55..63 => Call::Delete { key },
            63..85 => Call::Cas { key, expect: seen[key], val },
            85..95 => {
                if lease.is_none() {
                    match tokio::time::timeout(OP_TIMEOUT, c.lease_grant(3600, None)).await {
                        Ok(Ok(r)) => lease = Some(r.id()),
                        _ => {
                            client = None;
                            ep = (ep + 1) % n;
                            continue;
                        }
                    }
                }
                Call::Put { key, val, lease: lease.unwrap_or(0) }
            }
            _ => match lease.take() {
                Some(l) => Call::Revoke { lease: l },
                None => Call::Get { key },
            },
        };
        let out = record(&sh, id, ep, c, call.clone()).await;
        match (&call, &out) {
            (Call::Put { .. }, Out::Put { rev }) => seen[key] = *rev,
            (Call::Get { .. }, Out::Get { kv, .. }) => seen[key] = kv.map_or(0, |kv| kv.1),
            (Call::Delete { .. }, Out::Delete { .. }) => seen[key] = 0,
            (Call::Cas { .. }, Out::Cas { ok: true, rev }) => seen[key] = *rev,
            (_, Out::Unknown(_)) => {
                client = None;
                ep = (ep + 1) % n;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(5 + rng.below(10))).await;
    }
}

fn prefix_reached(sh: &Shared, prefix: &str, next_start: i64) -> bool {
    sh.target(prefix).is_some_and(|t| next_start > t)
}

async fn watcher_loop(w: usize, urls: Vec<String>, sh: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let n = urls.len();
    let mut ep = w % n;
    // Watcher 0 watches every key from the first revision to the end; the others pick a prefix and a
    // past revision, watch for a while, and pick again.
    let reference = w == 0;
    let mut prefix = "/lin/".to_string();
    let mut next_start: i64 = 1;
    let mut planned_end = Instant::now() + Duration::from_millis(2000 + rng.below(4000));
    loop {
        if sh.abandon.load(Relaxed) {
            return;
        }
        if prefix_reached(&sh, &prefix, next_start) {
            sh.reached.lock().unwrap()[w] = true;
            return;
        }
        let Some(mut c) = connect_with(&urls[ep], true).await else {
            ep = (ep + 1) % n;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opts = WatchOptions::new().with_prefix().with_start_revision(next_start);
        let mut stream = match tokio::time::timeout(OP_TIMEOUT, c.watch(prefix.clone(), Some(opts))).await {
            Ok(Ok(s)) => s,
            _ => {
                ep = (ep + 1) % n;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut seg = Segment {
            watcher: w,
            endpoint: ep,
            prefix: prefix.clone(),
            start: next_start,
            compacted: None,
            responses: Vec::new(),
            end: String::new(),
        };
        loop {
            match tokio::time::timeout(Duration::from_millis(200), stream.message()).await {
                Err(_) => {
                    if prefix_reached(&sh, &prefix, next_start) {
                        seg.end = "reached the end".into();
                        break;
                    }
                    if sh.abandon.load(Relaxed) {
                        seg.end = "abandoned".into();
                        break;
                    }
                    if !reference && Instant::now() > planned_end && !sh.stop.load(Relaxed) {
                        seg.end = "restarted".into();
                        prefix = if rng.below(2) == 0 {
                            "/lin/".to_string()
                        } else {
                            key_name(rng.below(KEYS as u64) as usize)
                        };
                        next_start = (sh.latest.load(Relaxed) - rng.below(500) as i64).max(1);
                        planned_end = Instant::now() + Duration::from_millis(2000 + rng.below(4000));
                        ep = rng.below(n as u64) as usize;
                        break;
                    }
                }
                Ok(Ok(Some(resp))) => {
                    if resp.compact_revision() > 0 {
                        seg.compacted = Some(resp.compact_revision());
                        seg.end = format!("compacted at {}", resp.compact_revision());
                        next_start = resp.compact_revision();
                        break;
                    }
                    if resp.canceled() {
                        seg.end = format!("canceled: {}", resp.cancel_reason());
                        ep = (ep + 1) % n;
                        break;
                    }
                    let evs: Vec<Ev> = resp
                        .events()
                        .iter()
                        .filter_map(|e| {
                            let kv = e.kv()?;
                            Some(Ev {
                                rev: kv.mod_revision(),
                                key: String::from_utf8_lossy(kv.key()).into_owned(),
                                val: match e.event_type() {
                                    etcd_client::EventType::Put => Some(value_of(kv.value())),
                                    etcd_client::EventType::Delete => None,
                                },
                            })
                        })
                        .collect();
                    if let Some(last) = evs.last() {
                        next_start = last.rev + 1;
                        seg.responses.push(evs);
                    }
                }
                Ok(Ok(None)) => {
                    seg.end = "stream ended".into();
                    ep = (ep + 1) % n;
                    break;
                }
                Ok(Err(e)) => {
                    seg.end = format!("error: {e}");
                    ep = (ep + 1) % n;
                    break;
                }
            }
        }
        sh.segments.lock().unwrap().push(seg);
    }
}

async fn compactor(urls: Vec<String>, sh: Arc<Shared>) {
    let mut done = 0i64;
    let mut i = 0;
    while !sh.stop.load(Relaxed) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let target = sh.latest.load(Relaxed) - COMPACT_LAG;
        if target <= done {
            continue;
        }
        i += 1;
        let Some(mut c) = connect(&urls[i % urls.len()]).await else { continue };
        if let Ok(Ok(_)) = tokio::time::timeout(OP_TIMEOUT, c.compact(target, None)).await {
            done = target;
            sh.compactions.lock().unwrap().push(target);
        }
    }
}

/// After the faults: stops the clients and the compactor, writes every key once more (so every
/// watcher has an event to reach at the end), and waits up to `limit` for every watcher to reach it.
pub fn finish(
    rt: &tokio::runtime::Runtime,
    h: Handles,
    urls: &[String],
    sh: &Arc<Shared>,
    limit: Duration,
) -> Result<(), String> {
    sh.stop.store(true, Relaxed);
    rt.block_on(async {
        for c in h.clients {
            let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), h.compactor).await;
    });
    let mut targets = HashMap::new();
    rt.block_on(async {
        for k in 0..KEYS {
            for attempt in 0..6 {
                let ep = (k + attempt) % urls.len();
                let Some(mut c) = connect(&urls[ep]).await else { continue };
                let val = ((FINAL_CLIENT as u64 + 1) << 32) | (k as u64 * 10 + attempt as u64 + 1);
                if let Out::Put { rev } =
                    record(sh, FINAL_CLIENT, ep, &mut c, Call::Put { key: k, val, lease: 0 }).await
                {
                    targets.insert(k, rev);
                    break;
                }
            }
        }
    });
    if targets.len() < KEYS {
        sh.abandon.store(true, Relaxed);
        return Err(format!("only {} of {KEYS} final writes succeeded after healing", targets.len()));
    }
    *sh.targets.lock().unwrap() = Some(targets);
    let watchers = h.watchers;
    let all = rt.block_on(async {
        tokio::time::timeout(limit, async {
            for w in watchers {
                let _ = w.await;
            }
        })
        .await
        .is_ok()
    });
    if !all {
        sh.abandon.store(true, Relaxed);
        std::thread::sleep(Duration::from_millis(500));
        let reached = sh.reached.lock().unwrap().clone();
        let behind: Vec<usize> = (0..reached.len()).filter(|&w| !reached[w]).collect();
        return Err(format!("watchers {behind:?} did not receive the final writes within {limit:?}"));
    }
    Ok(())
}

/// Whether every member answers Status.
pub async fn all_serving(urls: &[String]) -> bool {
    for url in urls {
        let status = async {
            let mut c = connect(url).await?;
            c.status().await.ok()
        };
        if !matches!(tokio::time::timeout(Duration::from_millis(700), status).await, Ok(Some(_))) {
            return false;
        }
    }
    true
}

/// The member every answering member names as leader, if a majority answers and they agree.
pub async fn leader(urls: &[String], skip: &[usize]) -> Option<usize> {
    let mut ids = Vec::new();
    let mut leaders = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        if skip.contains(&i) {
            continue;
        }
        let status = async {
            let mut c = connect(url).await?;
            c.status().await.ok()
        };
        if let Ok(Some(s)) = tokio::time::timeout(Duration::from_millis(700), status).await {
            ids.push((i, s.header().map(|h| h.member_id()).unwrap_or(0)));
            leaders.push(s.leader());
        }
    }
    if ids.len() * 2 <= urls.len()
        || leaders.is_empty()
        || leaders.iter().any(|l| *l != leaders[0] || *l == 0)
    {
        return None;
    }
    ids.iter().find(|(_, id)| *id == leaders[0]).map(|(i, _)| *i)
}

/// One line per member from its Status answer (leader, term, raft index, applied index), for a
/// failed run's report.
pub async fn status_lines(urls: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let status = async {
            let mut c = connect(url).await.ok_or_else(|| "no connection".to_string())?;
            c.status().await.map_err(|e| e.to_string())
        };
        let line = match tokio::time::timeout(Duration::from_secs(2), status).await {
            Ok(Ok(s)) => format!(
                "n{}: member {:x}, leader {:x}, term {}, raft index {}, applied {}",
                i + 1,
                s.header().map(|h| h.member_id()).unwrap_or(0),
                s.leader(),
                s.raft_term(),
                s.raft_index(),
                s.raft_applied_index()
            ),
            Ok(Err(e)) => format!("n{}: status failed: {e}", i + 1),
            Err(_) => format!("n{}: no status answer in 2 s", i + 1),
        };
        lines.push(line);
    }
    lines
}

/// Writes `count` times under /fill/ (the same `count` keys each time, values of `value_len` bytes)
/// through `urls`, 32 at a time, moving to another member after a failure; how many writes
/// succeeded before `limit`.
pub async fn fill(urls: &[String], count: u64, value_len: usize, limit: Duration) -> u64 {
    let value = "x".repeat(value_len.max(1));
    let written = Arc::new(AtomicI64::new(0));
    let next = Arc::new(AtomicI64::new(0));
    let deadline = Instant::now() + limit;
    let mut tasks = Vec::new();
    for t in 0..32 {
        let urls = urls.to_vec();
        let (written, next, value) = (written.clone(), next.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut ep = t;
            let mut client: Option<Client> = None;
            while Instant::now() < deadline && (written.load(Relaxed) as u64) < count {
                let Some(c) = client.as_mut() else {
                    client = connect(&urls[ep % urls.len()]).await;
                    if client.is_none() {
                        ep += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                };
                let i = next.fetch_add(1, Relaxed) as u64 % count.max(1);
                match tokio::time::timeout(OP_TIMEOUT, c.put(format!("/fill/{i}"), value.as_str(), None))
                    .await
                {
                    Ok(Ok(_)) => {
                        written.fetch_add(1, Relaxed);
                    }
                    _ => {
                        client = None;
                        ep += 1;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    written.load(Relaxed) as u64
}
