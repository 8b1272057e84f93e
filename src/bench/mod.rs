//! `etcdeck bench`: etcd's benchmark tool (tools/benchmark) for etcd and etcdeck alike — the same
//! subcommands, flags, keys and output, so figures from either tool compare. Clients share `--conns`
//! gRPC connections (client i uses connection i mod conns, connections go to the endpoints in turn,
//! or all to the leader with `--target-leader`); each client has one request in flight.

pub mod report;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, Txn, TxnOp};

pub use report::Report;

use crate::app::client;
use crate::app::connection::ConnectConfig;

/// The flags every benchmark takes.
#[derive(Debug, Clone)]
pub struct Common {
    pub conns: usize,
    pub clients: usize,
    pub precise: bool,
    pub target_leader: bool,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// What one benchmark does.
#[derive(Debug, Clone)]
pub enum Workload {
    /// Puts of one random value to keys from [0, key_space) (varint-encoded, zero-padded to
    /// key_size bytes, as etcd's tool makes them), at random or in sequence.
    /// With `decimal`, keys are zero-padded decimal numbers instead (readable in the console).
    Put {
        total: usize,
        key_size: usize,
        val_size: usize,
        key_space: usize,
        sequential: bool,
        decimal: bool,
        rate: u64,
    },
    /// Txns of `txn_ops` puts each, of keys (i * txn_ops + j) mod key_space.
    TxnPut { total: usize, key_size: usize, val_size: usize, txn_ops: usize, key_space: usize, rate: u64 },
    /// Gets of `key` (to `end`), linearizable or serializable.
    Range { total: usize, key: Vec<u8>, end: Option<Vec<u8>>, serializable: bool, rate: u64 },
    /// Every client grants a lease of 100 s, then sends KeepAliveOnce requests for it.
    LeaseKeepalive { total: usize },
    /// Watchers on `watched` keys spread over `streams` streams, then puts to those keys; reports
    /// watch creation, then events received.
    Watch {
        streams: usize,
        watch_per_stream: usize,
        watched_keys: usize,
        put_total: usize,
        put_rate: u64,
        key_size: usize,
        key_space: usize,
        sequential: bool,
    },
    /// One watcher per client on one key; each put (at `put_rate`) is timed from its answer until
    /// every watcher got the event.
    WatchLatency { total: usize, put_rate: u64, key_size: usize, val_size: usize },
}

/// What a benchmark printed: a title per report (watch has two), and the reports.
#[derive(Debug)]
pub struct Outcome {
    /// A line etcd's tool prints before the run ("bench with linearizable range").
    pub preamble: Option<String>,
    pub reports: Vec<(Option<String>, Report)>,
}

impl Outcome {
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(p) = &self.preamble {
            out += p;
            out += "\n";
        }
        for (title, report) in &self.reports {
            if let Some(t) = title {
                out += t;
                out += "\n";
            }
            out += &report.text();
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let reports: Vec<serde_json::Value> = self
            .reports
            .iter()
            .map(|(title, r)| {
                let mut v = r.json();
                if let (Some(t), Some(o)) = (title, v.as_object_mut()) {
                    o.insert("title".into(), serde_json::Value::String(t.trim_end_matches(':').to_string()));
                }
                v
            })
            .collect();
        if reports.len() == 1 {
            reports.into_iter().next().unwrap_or_default()
        } else {
            serde_json::Value::Array(reports)
        }
    }

    /// Whether every request succeeded.
    pub fn ok(&self) -> bool {
        self.reports.iter().all(|(_, r)| r.errors.is_empty())
    }
}

/// etcd's keys: `n` as a Go varint (zig-zag), in a zeroed buffer of `size` bytes.
pub fn varint_key(n: i64, size: usize) -> Result<Vec<u8>, String> {
    let mut ux = (n as u64) << 1;
    if n < 0 {
        ux = !ux;
    }
    let mut encoded = Vec::new();
    while ux >= 0x80 {
        encoded.push((ux as u8) | 0x80);
        ux >>= 7;
    }
    encoded.push(ux as u8);
    if encoded.len() > size {
        return Err(format!(
            "--key-size {size} is too small for key number {n} ({} bytes as a varint)",
            encoded.len()
        ));
    }
    let mut key = vec![0u8; size];
    key[..encoded.len()].copy_from_slice(&encoded);
    Ok(key)
}

/// `n` as a zero-padded decimal number of `size` bytes (`--decimal-keys`).
pub fn decimal_key(n: usize, size: usize) -> Result<Vec<u8>, String> {
    let key = format!("{n:0size$}");
    if key.len() > size {
        return Err(format!("--key-size {size} is too small for key number {n} ({} digits)", key.len()));
    }
    Ok(key.into_bytes())
}

/// Random bytes from a seeded xorshift: the benchmark's values (etcd's are random too).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small per-client generator for random key numbers.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The progress bar etcd's tool draws, on stderr when it is a terminal.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(total: usize, on: bool) -> Self {
        if !on || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{pos} / {len} [{bar:60}] {percent}% {per_sec} {elapsed_precise}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress(Some(bar))
    }

    fn inc(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// The leader's client URLs, as etcd's tool finds them: a member's Status names the leader, the
/// member list has its URLs.
async fn leader_endpoints(config: &ConnectConfig) -> Result<Vec<String>, String> {
    let mut last = String::from("no endpoint");
    for endpoint in &config.endpoints {
        let mut c = match client::connect(config, endpoint).await {
            Ok(c) => c,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let status = tokio::time::timeout(config.command_timeout, c.status()).await;
        let leader = match status {
            Ok(Ok(s)) => s.leader(),
            Ok(Err(e)) => {
                last = client::error_text(&e);
                continue;
            }
            Err(_) => {
                last = "context deadline exceeded".into();
                continue;
            }
        };
        let list = tokio::time::timeout(config.command_timeout, c.member_list())
            .await
            .map_err(|_| "failed to get a member list: context deadline exceeded".to_string())?
            .map_err(|e| format!("failed to get a member list: {}", client::error_text(&e)))?;
        return list
            .members()
            .iter()
            .find(|m| m.id() == leader)
            .map(|m| m.client_urls().to_vec())
            .filter(|urls| !urls.is_empty())
            .ok_or_else(|| "failed to find a leader endpoint".to_string());
    }
    Err(format!("failed to find a leader endpoint: {last}"))
}

/// `--conns` connections: to the endpoints in turn, or all to the leader.
async fn connections(config: &ConnectConfig, common: &Common) -> Result<Vec<Client>, String> {
    let endpoints =
        if common.target_leader { leader_endpoints(config).await? } else { config.endpoints.clone() };
    if endpoints.is_empty() {
        return Err("no endpoint".into());
    }
    let mut conns = Vec::new();
    for i in 0..common.conns.max(1) {
        let endpoint = &endpoints[i % endpoints.len()];
        conns.push(client::connect(config, endpoint).await.map_err(|e| format!("dial error: {e}"))?);
    }
    Ok(conns)
}

/// Runs `total` requests over `--clients` clients (client w on connection w mod conns), one request
/// in flight each, at most `rate` per second in all (0: no limit), timing each, with the progress
/// bar. `op(client, w, i)` makes request i from client w and hands the client back.
async fn run_requests<F, Fut>(
    conns: &[Client],
    common: &Common,
    total: usize,
    rate: u64,
    timeout: Duration,
    op: F,
) -> Report
where
    F: Fn(Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Client, Result<(), String>)> + Send,
{
    let progress = Arc::new(Progress::new(total, common.progress));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..common.clients.max(1))
        .map(|w| {
            let mut c = conns[w % conns.len()].clone();
            let (next, op, progress) = (next.clone(), op.clone(), progress.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors: BTreeMap<String, usize> = BTreeMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (latencies, errors);
                    }
                    if rate > 0 {
                        // Request i is due i/rate seconds after the start: an even pace in all,
                        // as etcd's limiter with a burst of one gives.
                        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let t = Instant::now();
                    match tokio::time::timeout(timeout, op(c.clone(), w, i)).await {
                        Ok((back, Ok(()))) => {
                            c = back;
                            latencies.push(t.elapsed().as_secs_f64());
                        }
                        Ok((back, Err(e))) => {
                            c = back;
                            *errors.entry(e).or_default() += 1;
                        }
                        Err(_) => *errors.entry("context deadline exceeded".into()).or_default() += 1,
                    }
                    progress.inc();
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        match t.await {
            Ok((l, e)) => {
                latencies.extend(l);
                for (k, n) in e {
                    *errors.entry(k).or_default() += n;
                }
            }
            Err(e) => *errors.entry(format!("internal error: {e}")).or_default() += 1,
        }
    }
    progress.finish();
    Report::new(started.elapsed(), latencies, errors, common.precise)
}

fn text(e: etcd_client::Error) -> String {
    client::error_text(&e)
}

/// Runs a benchmark against the configured endpoints.
pub async fn run(config: &ConnectConfig, common: &Common, workload: &Workload) -> Result<Outcome, String> {
    // etcd's tool waits as long as a request takes; a generous bound keeps a dead server from
    // hanging the run.
    let timeout = config.command_timeout.max(Duration::from_secs(30));
    match workload {
        Workload::Put { total, key_size, val_size, key_space, sequential, decimal, rate } => {
            if *decimal {
                decimal_key(key_space.saturating_sub(1), *key_size)?;
            } else {
                check_key_space(*key_space, *key_size)?;
            }
            let decimal = *decimal;
            let conns = connections(config, common).await?;
            let value = Arc::new(random_bytes(*val_size, 0x5eed));
            let (key_size, key_space, sequential) = (*key_size, *key_space, *sequential);
            let rngs: Arc<Vec<Mutex<Rng>>> = Arc::new(
                (0..common.clients.max(1))
                    .map(|w| Mutex::new(Rng((w as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))))
                    .collect(),
            );
            let report = run_requests(&conns, common, *total, *rate, timeout, move |mut c, w, i| {
                let value = value.clone();
                let n = if sequential {
                    i % key_space
                } else {
                    rngs[w].lock().map(|mut r| r.below(key_space)).unwrap_or(0)
                };
                async move {
                    let key =
                        match if decimal { decimal_key(n, key_size) } else { varint_key(n as i64, key_size) }
                        {
                            Ok(k) => k,
                            Err(e) => return (c, Err(e)),
                        };
                    let r = c.put(key, value.as_slice(), None).await.map(|_| ()).map_err(text);
                    (c, r)
                }
            })
            .await;
            Ok(Outcome { preamble: None, reports: vec![(None, report)] })
        }
        Workload::TxnPut { total, key_size, val_size, txn_ops, key_space, rate } => {
            check_key_space(*key_space, *key_size)?;
            let conns = connections(config, common).await?;
            let value = Arc::new(random_bytes(*val_size, 0x5eed));
            let (key_size, key_space, n) = (*key_size, *key_space, (*txn_ops).max(1));
            let report = run_requests(&conns, common, *total, *rate, timeout, move |mut c, _, i| {
                let value = value.clone();
                async move {
                    let mut ops = Vec::with_capacity(n);
                    for j in 0..n {
                        match varint_key(((i * n + j) % key_space) as i64, key_size) {
                            Ok(k) => ops.push(TxnOp::put(k, value.as_slice(), None)),
                            Err(e) => return (c, Err(e)),
                        }
                    }
                    let r = c.txn(Txn::new().and_then(ops)).await.map(|_| ()).map_err(text);
                    (c, r)
                }
            })
            .await;
            Ok(Outcome { preamble: None, reports: vec![(None, report)] })
        }
        Workload::Range { total, key, end, serializable, rate } => {
            let conns = connections(config, common).await?;
            let mut options = GetOptions::new();
            if let Some(end) = end {
                options = options.with_range(end.clone());
            }
            if *serializable {
                options = options.with_serializable();
            }
            let key = Arc::new(key.clone());
            let report = run_requests(&conns, common, *total, *rate, timeout, move |mut c, _, _| {
                let (key, options) = (key.clone(), options.clone());
                async move {
                    let r = c.get(key.as_slice(), Some(options)).await.map(|_| ()).map_err(text);
                    (c, r)
                }
            })
            .await;
            let preamble =
                format!("bench with {} range", if *serializable { "serializable" } else { "linearizable" });
            Ok(Outcome { preamble: Some(preamble), reports: vec![(None, report)] })
        }
        Workload::LeaseKeepalive { total } => {
            let conns = connections(config, common).await?;
            // Each client's lease, granted before the clock starts (as etcd's tool does).
            let mut leases = Vec::new();
            for w in 0..common.clients.max(1) {
                let mut c = conns[w % conns.len()].clone();
                let lease = tokio::time::timeout(timeout, c.lease_grant(100, None))
                    .await
                    .map_err(|_| "lease grant: context deadline exceeded".to_string())?
                    .map_err(|e| format!("lease grant: {}", text(e)))?;
                leases.push(lease.id());
            }
            let leases = Arc::new(leases);
            let report =
                run_requests(&conns, common, *total, 0, timeout, move |c, w, _| {
                    let id = leases[w];
                    async move {
                        keep_alive_once(c.clone(), id).await.map_or_else(|e| (c, Err(e)), |c| (c, Ok(())))
                    }
                })
                .await;
            Ok(Outcome { preamble: None, reports: vec![(None, report)] })
        }
        Workload::Watch { .. } => watch(config, common, workload).await,
        Workload::WatchLatency { .. } => watch_latency(config, common, workload).await,
    }
}

fn check_key_space(key_space: usize, key_size: usize) -> Result<(), String> {
    if key_space == 0 {
        return Err(format!("expected positive --key-space-size, got ({key_space})"));
    }
    // The largest key number must fit the key size.
    varint_key(key_space as i64 - 1, key_size).map(|_| ())
}

/// One KeepAliveOnce: a keep-alive stream, one request, its answer.
async fn keep_alive_once(mut c: Client, id: i64) -> Result<Client, String> {
    let (mut keeper, mut stream) = c.lease_keep_alive(id).await.map_err(text)?;
    keeper.keep_alive().await.map_err(text)?;
    match stream.message().await.map_err(text)? {
        Some(r) if r.ttl() > 0 => Ok(c),
        Some(_) => Err("etcdserver: requested lease not found".into()),
        None => Err("the keep-alive stream ended".into()),
    }
}

async fn watch(config: &ConnectConfig, common: &Common, workload: &Workload) -> Result<Outcome, String> {
    let Workload::Watch {
        streams,
        watch_per_stream,
        watched_keys,
        put_total,
        put_rate,
        key_size,
        key_space,
        sequential,
    } = workload.clone()
    else {
        return Err("internal error: not a watch workload".into());
    };
    check_key_space(key_space, key_size)?;
    let conns = connections(config, common).await?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let watched: Vec<Vec<u8>> = (0..watched_keys.max(1))
        .map(|i| varint_key((if sequential { i % key_space } else { rng.below(key_space) }) as i64, key_size))
        .collect::<Result<_, _>>()?;
    // Watch creation: each stream on client i mod clients; the watch counts once its stream
    // confirms it (etcd's tool times only the call, which returns before the server answers).
    let total_watches = streams * watch_per_stream;
    let progress = Progress::new(total_watches, common.progress);
    let mut watchers_per_key: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut create_lats = Vec::new();
    let mut create_errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut streams_open = Vec::new();
    let started = Instant::now();
    let mut k = 0usize;
    for s in 0..streams {
        let mut c = conns[s % conns.len().min(common.clients.max(1)).max(1)].clone();
        let mut open: Option<etcd_client::WatchStream> = None;
        for _ in 0..watch_per_stream {
            let key = watched[k % watched.len()].clone();
            k += 1;
            let t = Instant::now();
            let sent = match open.as_mut() {
                None => c.watch(key.clone(), None).await.map(|s| {
                    open = Some(s);
                }),
                Some(stream) => stream.watch(key.clone(), None).await,
            };
            let created = match (sent, open.as_mut()) {
                (Err(e), _) => Err(text(e)),
                (Ok(()), None) => Err("no watch stream".into()),
                (Ok(()), Some(stream)) => {
                    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
                        Ok(Ok(Some(r))) if r.created() => Ok(()),
                        Ok(Ok(_)) => Err("the watch was not created".into()),
                        Ok(Err(e)) => Err(text(e)),
                        Err(_) => Err("context deadline exceeded".into()),
                    }
                }
            };
            match created {
                Ok(()) => {
                    create_lats.push(t.elapsed().as_secs_f64());
                    *watchers_per_key.entry(key).or_default() += 1;
                }
                Err(e) => *create_errors.entry(e).or_default() += 1,
            }
            progress.inc();
        }
        if let Some(stream) = open {
            streams_open.push(stream);
        }
    }
    progress.finish();
    let creation = Report::new(started.elapsed(), create_lats, create_errors, common.precise);

    // Events: each put reaches every watcher of its key; an event's latency runs from its put's
    // start (found by its revision) to its arrival.
    let expected: usize =
        (0..put_total).map(|i| watchers_per_key.get(&watched[i % watched.len()]).copied().unwrap_or(0)).sum();
    let progress = Arc::new(Progress::new(expected, common.progress));
    let put_started: Arc<Mutex<BTreeMap<i64, Instant>>> = Arc::default();
    let received = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut receivers = Vec::new();
    for mut stream in streams_open {
        let (received, progress, done_tx) = (received.clone(), progress.clone(), done_tx.clone());
        let mut done_rx = done_rx.clone();
        receivers.push(tokio::spawn(async move {
            // (revision, arrival): joined with the puts' start times once all have answered (an
            // event may arrive before its put's answer).
            let mut arrivals: Vec<(i64, Instant)> = Vec::new();
            loop {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = done_rx.changed() => return arrivals,
                };
                let Ok(Some(resp)) = msg else { return arrivals };
                let now = Instant::now();
                for ev in resp.events() {
                    arrivals.push((ev.kv().map_or(0, |kv| kv.mod_revision()), now));
                    progress.inc();
                    if received.fetch_add(1, Ordering::Relaxed) + 1 >= expected {
                        let _ = done_tx.send(true);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut putters = Vec::new();
    for w in 0..common.clients.max(1) {
        let mut c = conns[w % conns.len()].clone();
        let (next, watched, put_started) = (next.clone(), watched.clone(), put_started.clone());
        putters.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= put_total {
                    return Ok::<(), String>(());
                }
                if put_rate > 0 {
                    let due = started + Duration::from_secs_f64(i as f64 / put_rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let resp = c.put(watched[i % watched.len()].clone(), "data", None).await.map_err(text)?;
                if let (Some(h), Ok(mut m)) = (resp.header(), put_started.lock()) {
                    m.insert(h.revision(), t);
                }
            }
        }));
    }
    let mut put_error = None;
    for p in putters {
        if let Ok(Err(e)) = p.await {
            put_error.get_or_insert(e);
        }
    }
    if let Some(e) = put_error {
        let _ = done_tx.send(true);
        return Err(format!("put: {e}"));
    }
    // Every event, or give up after 30 s without all of them.
    let mut done = done_rx.clone();
    let _ = tokio::time::timeout(Duration::from_secs(30), done.wait_for(|d| *d)).await;
    let _ = done_tx.send(true);
    let starts = put_started.lock().map(|m| m.clone()).unwrap_or_default();
    let mut lats = Vec::new();
    for r in receivers {
        for (rev, at) in r.await.unwrap_or_default() {
            if let Some(start) = starts.get(&rev) {
                lats.push(at.duration_since(*start).as_secs_f64());
            }
        }
    }
    progress.finish();
    let mut errors = BTreeMap::new();
    let got = received.load(Ordering::Relaxed);
    if got < expected {
        errors.insert(
            format!("events not received within 30 s of the last put: {got} of {expected}"),
            expected - got,
        );
    }
    let events = Report::new(started.elapsed(), lats, errors, common.precise);
    Ok(Outcome {
        preamble: None,
        reports: vec![
            (Some("Watch creation summary:".into()), creation),
            (Some("Watch events received summary:".into()), events),
        ],
    })
}

async fn watch_latency(
    config: &ConnectConfig,
    common: &Common,
    workload: &Workload,
) -> Result<Outcome, String> {
    let Workload::WatchLatency { total, put_rate, key_size, val_size } = workload.clone() else {
        return Err("internal error: not a watch-latency workload".into());
    };
    let conns = connections(config, common).await?;
    let key = random_bytes(key_size, 0x1234_5678);
    let value = random_bytes(val_size, 0x8765_4321);
    let mut putter = connections(config, &Common { conns: 1, ..common.clone() }).await?.remove(0);
    let mut streams = Vec::new();
    for w in 0..common.clients.max(1) {
        let mut c = conns[w % conns.len()].clone();
        let stream = c.watch(key.clone(), None).await.map_err(|e| format!("watch: {}", text(e)))?;
        streams.push(stream);
    }
    let progress = Progress::new(total, common.progress);
    let mut lats = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    for i in 0..total {
        if put_rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / put_rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        putter
            .put(key.clone(), value.clone(), None)
            .await
            .map_err(|e| format!("Failed to Put for watch latency benchmark: {}", text(e)))?;
        // Timed from the put's answer to each watcher's event, as etcd's tool does.
        let st = Instant::now();
        let waits = streams.iter_mut().map(|stream| async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
                    Ok(Ok(Some(r))) if !r.events().is_empty() => return Ok(st.elapsed().as_secs_f64()),
                    Ok(Ok(Some(_))) => continue,
                    Ok(Ok(None)) => return Err("the watch stream ended".to_string()),
                    Ok(Err(e)) => return Err(text(e)),
                    Err(_) => return Err("no event within 10 s".to_string()),
                }
            }
        });
        for r in futures::future::join_all(waits).await {
            match r {
                Ok(l) => lats.push(l),
                Err(e) => *errors.entry(e).or_default() += 1,
            }
        }
        progress.inc();
    }
    progress.finish();
    Ok(Outcome {
        preamble: None,
        reports: vec![(None, Report::new(started.elapsed(), lats, errors, common.precise))],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_gos_varints_zero_padded_to_the_key_size() {
        assert_eq!(varint_key(0, 8).unwrap(), vec![0; 8]);
        assert_eq!(varint_key(1, 4).unwrap(), vec![2, 0, 0, 0]);
        assert_eq!(varint_key(-1, 2).unwrap(), vec![1, 0]);
        // 100 000 zig-zags to 200 000: three varint bytes.
        assert_eq!(varint_key(100_000, 8).unwrap(), vec![0xc0, 0x9a, 0x0c, 0, 0, 0, 0, 0]);
        let e = varint_key(100_000, 2).unwrap_err();
        assert!(e.contains("--key-size 2 is too small"), "{e}");
        assert!(check_key_space(0, 8).is_err());
        assert!(check_key_space(100_000, 8).is_ok());
        assert_eq!(decimal_key(42, 5).unwrap(), b"00042");
        assert!(decimal_key(100_000, 5).is_err());
    }
}
