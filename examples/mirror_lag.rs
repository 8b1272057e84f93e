//! Run by bench/mirror.sh, not a tool: writes to the source at a fixed rate, each value the time it
//! was sent, and watches the destination, where each arriving key's lag is its arrival time minus
//! that. One process, one clock, the same for any mirror tool.
//!
//! mirror_lag SOURCE DEST SRC_PREFIX DEST_PREFIX RATE SECONDS
//! prints one line of JSON: writes sent, writes/s, events applied/s at the destination in the
//! steady window, lag p50/p99/max in ms, and how long the last writes took to arrive.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use etcd_client::{Client, WatchOptions};

fn now_ns() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, source, dest, prefix, dest_prefix, rate, seconds] = &args[..] else {
        return Err("usage: mirror_lag SOURCE DEST SRC_PREFIX DEST_PREFIX RATE SECONDS".into());
    };
    let rate: u64 = rate.parse()?;
    let seconds: u64 = seconds.parse()?;
    let total = rate * seconds;
    // Lags of the arrivals after the first fifth (the warm-up), and arrivals per second.
    let lags: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let arrived = Arc::new(AtomicU64::new(0));
    let warm = Duration::from_secs(seconds / 5);
    let started = Instant::now();

    let mut watcher = Client::connect([dest.as_str()], None).await?;
    let mut stream = watcher.watch(dest_prefix.as_str(), Some(WatchOptions::new().with_prefix())).await?;
    let (lags_w, arrived_w) = (lags.clone(), arrived.clone());
    let watch = tokio::spawn(async move {
        let mut last_arrival = Instant::now();
        while let Ok(Some(resp)) = stream.message().await {
            let at = now_ns();
            for e in resp.events() {
                let Some(kv) = e.kv() else { continue };
                let Some(sent) = std::str::from_utf8(kv.value()).ok().and_then(|v| v.parse::<u64>().ok())
                else {
                    continue;
                };
                let n = arrived_w.fetch_add(1, Relaxed) + 1;
                last_arrival = Instant::now();
                if started.elapsed() >= warm {
                    lags_w.lock().unwrap().push(at.saturating_sub(sent));
                }
                if n == total {
                    return last_arrival;
                }
            }
        }
        last_arrival
    });

    // The writers: `rate` puts a second, 64 at most in flight, on 8 connections.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Client::connect([source.as_str()], None).await?);
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let per_ms = rate as f64 / 1000.0;
    let (mut sent, mut owed) = (0u64, 0.0f64);
    let send_started = Instant::now();
    while sent < total {
        tick.tick().await;
        owed += per_ms;
        while owed >= 1.0 && sent < total {
            owed -= 1.0;
            let mut c = clients[(sent % 8) as usize].clone();
            let key = format!("{prefix}k{:07}", sent);
            let permit = limit.clone().acquire_owned().await?;
            tokio::spawn(async move {
                let _ = c.put(key, now_ns().to_string(), None).await;
                drop(permit);
            });
            sent += 1;
        }
    }
    let _ = limit.acquire_many(64).await?;
    let send_secs = send_started.elapsed().as_secs_f64();
    let done_sending = Instant::now();
    let last = tokio::time::timeout(Duration::from_secs(120), watch).await;
    let (drained, window) = match last {
        Ok(Ok(at)) => (
            at.saturating_duration_since(done_sending).as_secs_f64(),
            at.saturating_duration_since(started + warm).as_secs_f64(),
        ),
        _ => (-1.0, started.elapsed().as_secs_f64() - warm.as_secs_f64()),
    };
    let arrived = arrived.load(Relaxed);
    let mut lags = lags.lock().unwrap().clone();
    lags.sort_unstable();
    let pick = |q: f64| -> f64 {
        if lags.is_empty() {
            return -1.0;
        }
        let i = ((lags.len() as f64 - 1.0) * q).round() as usize;
        lags[i] as f64 / 1e6
    };
    println!(
        "{{\"rate\":{rate},\"sent\":{sent},\"sent_per_s\":{:.0},\"arrived\":{arrived},\"applied_per_s\":{:.0},\"lag_p50_ms\":{:.1},\"lag_p99_ms\":{:.1},\"lag_max_ms\":{:.1},\"drain_s\":{drained:.2}}}",
        sent as f64 / send_secs,
        lags.len() as f64 / window.max(1e-3),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    Ok(())
}
