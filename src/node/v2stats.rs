//! What the v2 API's /v2/stats/self and /v2/stats/leader report (etcd 3.4's v2stats): this
//! member's raft appends sent and received with their rates, who it takes for the leader and
//! since when; and, on the leader, each follower's round-trip latency and its answered and
//! unanswered heartbeats.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::etcd::k8s::decode::go_duration;

/// etcd's queueCapacity: the rates are over the last 200 appends.
const RATE_SAMPLES: usize = 200;

#[derive(Default)]
struct Rate {
    samples: VecDeque<(Instant, usize)>,
    bytes: usize,
}

impl Rate {
    fn add(&mut self, size: usize) {
        if self.samples.len() == RATE_SAMPLES {
            if let Some((_, old)) = self.samples.pop_front() {
                self.bytes -= old;
            }
        }
        self.samples.push_back((Instant::now(), size));
        self.bytes += size;
    }

    /// etcd's statsQueue.Rate: appends and bytes per second over the samples, none when the last is
    /// more than a second old or the samples span no time.
    fn rates(&self) -> (f64, f64) {
        let (Some((first, _)), Some((last, _))) = (self.samples.front(), self.samples.back()) else {
            return (0.0, 0.0);
        };
        let span = last.duration_since(*first).as_secs_f64();
        if last.elapsed() > Duration::from_secs(1) || span <= 0.0 {
            return (0.0, 0.0);
        }
        (self.samples.len() as f64 / span, self.bytes as f64 / span)
    }
}

struct Member {
    leader: u64,
    is_leader: bool,
    leader_since: (Instant, SystemTime),
    received: u64,
    sent: u64,
    recv_rate: Rate,
    send_rate: Rate,
}

#[derive(Default, Clone)]
struct Follower {
    /// Milliseconds: the last, the sum and the sum of squares (for the average and deviation),
    /// the least and the most.
    current: f64,
    sum: f64,
    squares: f64,
    min: Option<f64>,
    max: f64,
    success: u64,
    fail: u64,
}

/// A member's v2 stats, updated by the raft driver as messages go and come.
pub struct Stats {
    started: SystemTime,
    member: Mutex<Member>,
    followers: Mutex<BTreeMap<u64, Follower>>,
    /// Heartbeats sent and not yet answered, by follower.
    pending: Mutex<BTreeMap<u64, Instant>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: SystemTime::now(),
            member: Mutex::new(Member {
                leader: 0,
                is_leader: false,
                leader_since: (Instant::now(), SystemTime::now()),
                received: 0,
                sent: 0,
                recv_rate: Rate::default(),
                send_rate: Rate::default(),
            }),
            followers: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(BTreeMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Go's time.Time in JSON: RFC 3339 with nanoseconds, trailing zeros dropped, in UTC.
fn go_time(at: SystemTime) -> String {
    let nanos = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    crate::node::v2store::go_time(i64::try_from(nanos).unwrap_or(i64::MAX))
}

impl Stats {
    fn set_leader(m: &mut Member, leader: u64) {
        if m.leader != leader {
            m.leader = leader;
            m.leader_since = (Instant::now(), SystemTime::now());
        }
    }

    /// This member became the leader (etcd's BecomeLeader).
    pub fn became_leader(&self, me: u64) {
        let mut m = lock(&self.member);
        m.is_leader = true;
        Self::set_leader(&mut m, me);
    }

    /// An append of `size` bytes sent by this member, which leads then (etcd's SendAppendReq).
    pub fn append_sent(&self, me: u64, size: usize) {
        let mut m = lock(&self.member);
        if !m.is_leader {
            m.is_leader = true;
            Self::set_leader(&mut m, me);
        }
        m.sent += 1;
        m.send_rate.add(size);
    }

    /// An append of `size` bytes from `leader` (etcd's RecvAppendReq).
    pub fn append_received(&self, leader: u64, size: usize) {
        let mut m = lock(&self.member);
        m.is_leader = false;
        Self::set_leader(&mut m, leader);
        m.received += 1;
        m.recv_rate.add(size);
    }

    /// A heartbeat sent to `to`: its answer times the round trip. One unanswered for longer than
    /// `give_up` counts as a failure.
    pub fn heartbeat_sent(&self, to: u64, give_up: Duration) {
        let mut pending = lock(&self.pending);
        match pending.get(&to) {
            Some(at) if at.elapsed() < give_up => {}
            Some(_) => {
                lock(&self.followers).entry(to).or_default().fail += 1;
                pending.insert(to, Instant::now());
            }
            None => {
                pending.insert(to, Instant::now());
            }
        }
    }

    /// `from` answered a heartbeat.
    pub fn heartbeat_answered(&self, from: u64) {
        let Some(at) = lock(&self.pending).remove(&from) else { return };
        let ms = at.elapsed().as_secs_f64() * 1000.0;
        let mut followers = lock(&self.followers);
        let f = followers.entry(from).or_default();
        f.current = ms;
        f.sum += ms;
        f.squares += ms * ms;
        f.min = Some(f.min.map_or(ms, |m| m.min(ms)));
        f.max = f.max.max(ms);
        f.success += 1;
    }

    /// The followers are the cluster's other members (etcd adds and removes them with the peers).
    pub fn set_followers(&self, me: u64, members: &[u64]) {
        let mut followers = lock(&self.followers);
        followers.retain(|id, _| members.contains(id));
        for id in members.iter().filter(|id| **id != me) {
            followers.entry(*id).or_default();
        }
        lock(&self.pending).retain(|id, _| members.contains(id));
    }

    /// /v2/stats/self, as etcd's ServerStats.JSON writes it.
    pub fn self_json(&self, name: &str, id: u64) -> String {
        let m = lock(&self.member);
        let (recv_pkg, recv_bw) = m.recv_rate.rates();
        let (send_pkg, send_bw) = m.send_rate.rates();
        let self_stats = SelfStats {
            name: name.to_string(),
            id: format!("{id:x}"),
            state: if m.is_leader { "StateLeader" } else { "StateFollower" },
            start_time: go_time(self.started),
            leader_info: LeaderInfo {
                leader: if m.leader == 0 { String::new() } else { format!("{:x}", m.leader) },
                uptime: go_duration(i64::try_from(m.leader_since.0.elapsed().as_nanos()).unwrap_or(i64::MAX)),
                start_time: go_time(m.leader_since.1),
            },
            recv_append_request_cnt: m.received,
            recv_pkg_rate: recv_pkg,
            recv_bandwidth_rate: recv_bw,
            send_append_request_cnt: m.sent,
            send_pkg_rate: send_pkg,
            send_bandwidth_rate: send_bw,
        };
        serde_json::to_string(&self_stats).unwrap_or_default()
    }

    /// /v2/stats/leader, as etcd's LeaderStats.JSON writes it.
    pub fn leader_json(&self, id: u64) -> String {
        let followers: BTreeMap<String, FollowerStats> = lock(&self.followers)
            .iter()
            .map(|(id, f)| {
                let n = f.success as f64;
                let average = if f.success > 0 { f.sum / n } else { 0.0 };
                let variance = if f.success > 0 { (f.squares / n - average * average).max(0.0) } else { 0.0 };
                let stats = FollowerStats {
                    latency: Latency {
                        current: f.current,
                        average,
                        standard_deviation: variance.sqrt(),
                        // etcd starts the minimum at 1<<63 until a round trip is timed.
                        minimum: f.min.unwrap_or(9_223_372_036_854_775_808.0),
                        maximum: f.max,
                    },
                    counts: Counts { fail: f.fail, success: f.success },
                };
                (format!("{id:x}"), stats)
            })
            .collect();
        serde_json::to_string(&LeaderStats { leader: format!("{id:x}"), followers }).unwrap_or_default()
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SelfStats {
    name: String,
    id: String,
    state: &'static str,
    start_time: String,
    leader_info: LeaderInfo,
    recv_append_request_cnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    recv_pkg_rate: f64,
    #[serde(skip_serializing_if = "is_zero")]
    recv_bandwidth_rate: f64,
    send_append_request_cnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    send_pkg_rate: f64,
    #[serde(skip_serializing_if = "is_zero")]
    send_bandwidth_rate: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaderInfo {
    leader: String,
    uptime: String,
    start_time: String,
}

#[derive(Serialize)]
struct LeaderStats {
    leader: String,
    followers: BTreeMap<String, FollowerStats>,
}

#[derive(Serialize)]
struct FollowerStats {
    latency: Latency,
    counts: Counts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Latency {
    current: f64,
    average: f64,
    standard_deviation: f64,
    minimum: f64,
    maximum: f64,
}

#[derive(Serialize)]
struct Counts {
    fail: u64,
    success: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_stats_follow_the_appends_as_etcds_do() {
        let s = Stats::default();
        let v: serde_json::Value = serde_json::from_str(&s.self_json("a", 0xab)).unwrap();
        assert_eq!((v["id"].as_str(), v["state"].as_str()), (Some("ab"), Some("StateFollower")));
        assert_eq!(v["leaderInfo"]["leader"], "");
        assert!(v.get("recvPkgRate").is_none(), "no rate without appends");
        s.append_received(0xcd, 100);
        s.append_received(0xcd, 100);
        let v: serde_json::Value = serde_json::from_str(&s.self_json("a", 0xab)).unwrap();
        assert_eq!(
            (v["leaderInfo"]["leader"].as_str(), v["recvAppendRequestCnt"].as_u64()),
            (Some("cd"), Some(2))
        );
        assert!(v["recvPkgRate"].as_f64().unwrap() > 0.0);
        s.append_sent(0xab, 10);
        let v: serde_json::Value = serde_json::from_str(&s.self_json("a", 0xab)).unwrap();
        assert_eq!(
            (v["state"].as_str(), v["leaderInfo"]["leader"].as_str()),
            (Some("StateLeader"), Some("ab"))
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(&keys[..6], ["name", "id", "state", "startTime", "leaderInfo", "recvAppendRequestCnt"]);
    }

    #[test]
    fn leader_stats_time_heartbeats_and_count_the_unanswered() {
        let s = Stats::default();
        s.set_followers(1, &[1, 2, 3]);
        s.heartbeat_sent(2, Duration::from_secs(1));
        s.heartbeat_answered(2);
        s.heartbeat_sent(3, Duration::ZERO);
        s.heartbeat_sent(3, Duration::ZERO);
        let v: serde_json::Value = serde_json::from_str(&s.leader_json(1)).unwrap();
        assert_eq!(v["leader"], "1");
        assert_eq!(v["followers"]["2"]["counts"], serde_json::json!({"fail": 0, "success": 1}));
        assert_eq!(v["followers"]["3"]["counts"], serde_json::json!({"fail": 1, "success": 0}));
        assert_eq!(v["followers"]["3"]["latency"]["minimum"].as_f64(), Some(9_223_372_036_854_775_808.0));
        assert!(v["followers"].get("1").is_none(), "the leader is not its own follower");
    }
}
