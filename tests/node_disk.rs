//! A full disk: the data dir on a small tmpfs (where this machine lets the test mount one; it
//! skips with the reason where it does not). The member says so once with the path, raises
//! NOSPACE, refuses writes with etcd's error, serves reads, stops on SIGTERM within 5 s, and after a
//! restart with space has every acknowledged write. (A write that fails on the disk itself is
//! injected in the driver's tests, `node::raft::driver`.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};

use crate::node_kv::within;
use crate::support::EtcdeckNode;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {} with size {size}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_raises_nospace_serves_reads_stops_in_5_s_and_loses_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let mnt = root.path().join("small");
    let fs = match Tmpfs::mount(&mnt, "20m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipping the full-disk test: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let mut n = EtcdeckNode::start_in("full", &mnt.join("full.etcd"), &[]);
    let mut c = within(Client::connect([n.client_url.as_str()], None)).await.expect("connect");
    let value = "v".repeat(100_000);
    let mut acked = Vec::new();
    let refusal = loop {
        let key = format!("big/{}", acked.len());
        match tokio::time::timeout(Duration::from_secs(15), c.put(key.as_str(), value.as_str(), None)).await {
            Ok(Ok(_)) => acked.push(key),
            Ok(Err(e)) => break e.to_string(),
            Err(_) => panic!("a put hung for 15 s with {} acknowledged", acked.len()),
        }
        assert!(acked.len() < 1000, "20 MB never filled");
    };
    eprintln!("disk full after {} acknowledged 100 kB puts: {refusal}", acked.len());
    // The put the disk refused may or may not have been written: its outcome is unknown, never a
    // failure that later turns out to be a success. Later ones are refused with etcd's error.
    let after = within(c.put("after", "x", None)).await.expect_err("a write on a full disk");
    assert!(after.to_string().contains("etcdserver: mvcc: database space exceeded"), "{after}");

    // Refused before a write to disk failed (or, past that, on the failed write): said once, with
    // the path.
    let log = n.log_text();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("writing to disk failed") || l.contains("writes that add data"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {log}");
    assert!(said[0].contains(&mnt.display().to_string()), "{log}");

    let alarms = within(c.alarm(etcd_client::AlarmAction::Get, etcd_client::AlarmType::None, None))
        .await
        .expect("alarm list");
    assert!(
        alarms.alarms().iter().any(|a| a.alarm() == etcd_client::AlarmType::Nospace),
        "{:?}",
        alarms.alarms().iter().map(|a| (a.member_id(), a.alarm())).collect::<Vec<_>>()
    );
    for serializable in [true, false] {
        let mut opts = GetOptions::new().with_prefix().with_keys_only();
        if serializable {
            opts = opts.with_serializable();
        }
        let got = within(c.get("big/", Some(opts))).await.expect("reads go on");
        assert!(got.kvs().len() >= acked.len(), "serializable {serializable}: {}", got.kvs().len());
    }
    drop(c);

    let stopping = Instant::now();
    let pid = n.pid().expect("running").to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let code = n.wait_exit(Duration::from_secs(5));
    let took = stopping.elapsed();
    eprintln!("SIGTERM on a full disk: exit {code:?} after {} ms", took.as_millis());
    assert_eq!(code, Some(0), "a clean exit within 5 s:\n{}", n.log_text());

    fs.resize("200m");
    n.restart();
    let mut c = within(Client::connect([n.client_url.as_str()], None)).await.expect("connect");
    let got =
        within(c.get("big/", Some(GetOptions::new().with_prefix().with_keys_only()))).await.expect("get");
    let held: std::collections::BTreeSet<String> =
        got.kvs().iter().map(|kv| kv.key_str().unwrap_or("").to_string()).collect();
    let lost: Vec<&String> = acked.iter().filter(|k| !held.contains(*k)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged puts lost: {lost:?}", lost.len(), acked.len());
    within(c.put("after", "x", None)).await.expect("writes again once there is space");
    drop(c);
    n.kill();
}

/// Values sled keeps as files of their own (blobs), and a snapshot every 200 entries: making the
/// store durable at each snapshot meets files sled removes meanwhile, which must not stop the
/// member (it did: "writing to disk failed: ... No such file or directory").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_among_large_values_never_stop_the_member() {
    let mut n = EtcdeckNode::start("blobs", &["--snapshot-count=200"]);
    let c = within(Client::connect([n.client_url.as_str()], None)).await.expect("connect");
    let value = "b".repeat(20_000);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (mut c, value) = (c.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..250 {
                    c.put(format!("blob/{}", (w * 250 + i) % 500), value.as_str(), None)
                        .await
                        .map_err(|e| format!("put {i} of writer {w}: {e}"))?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for w in writers {
        let done = tokio::time::timeout(Duration::from_secs(120), w).await.expect("writers end in 120 s");
        done.expect("writer task").expect("every put acknowledged");
    }
    let log = n.log_text();
    assert!(!log.contains("writing to disk failed"), "{log}");
    drop(c);
    n.kill();
}
