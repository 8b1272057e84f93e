//! Checking a run's history: linearizability key by key, revisions, lost writes, watches, and the
//! members' final agreement.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::lincheck::{self, Model, Timed, Verdict};
use super::workload::{self, key_name, Call, Ev, Out, Record, Segment, Shared, FINAL_CLIENT, KEYS};

#[derive(Default)]
pub struct Checks {
    pub operations: usize,
    pub unknown: usize,
    pub watch_events: usize,
    /// Why operations failed or ended unknown, most common first.
    pub reasons: Vec<(String, usize)>,
    pub violations: Vec<String>,
    pub lost: Vec<String>,
}

/// One key's state in the sequential model: its value, the mod revision (None while only a write
/// with an unknown outcome set it), and its lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyState {
    val: u64,
    rev: Option<i64>,
    lease: i64,
}

/// One key's operations, as the model sees them.
#[derive(Clone, Debug)]
pub enum KeyOp {
    Put { val: u64, rev: Option<i64>, lease: i64 },
    Get { kv: Option<(u64, i64)> },
    Delete { deleted: Option<i64> },
    Cas { expect: i64, val: u64, ok: Option<bool>, rev: Option<i64> },
    Revoke { lease: i64 },
}

pub struct KeyModel;

fn newer(state: &Option<KeyState>, rev: Option<i64>) -> bool {
    match (state.as_ref().and_then(|s| s.rev), rev) {
        (Some(old), Some(new)) => new > old,
        _ => true,
    }
}

impl Model for KeyModel {
    type State = Option<KeyState>;
    type Op = KeyOp;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, op: &KeyOp) -> Vec<Self::State> {
        match op {
            KeyOp::Put { val, rev, lease } => {
                if newer(state, *rev) {
                    vec![Some(KeyState { val: *val, rev: *rev, lease: *lease })]
                } else {
                    vec![]
                }
            }
            KeyOp::Get { kv } => match (state, kv) {
                (None, None) => vec![None],
                (Some(s), Some((v, mr))) if s.val == *v && s.rev.is_none_or(|r| r == *mr) => {
                    vec![Some(KeyState { rev: Some(*mr), ..s.clone() })]
                }
                _ => vec![],
            },
            KeyOp::Delete { deleted } => match deleted {
                Some(d) if *d != i64::from(state.is_some()) => vec![],
                _ => vec![None],
            },
            KeyOp::Cas { expect, val, ok, rev } => {
                let holds = match state {
                    None => Some(*expect == 0),
                    Some(s) => s.rev.map(|r| r == *expect),
                };
                let put = Some(KeyState { val: *val, rev: *rev, lease: 0 });
                let may_put = newer(state, *rev);
                match (ok, holds) {
                    (Some(true), Some(false)) | (Some(false), Some(true)) => vec![],
                    (Some(true), _) if may_put => vec![put],
                    (Some(true), _) => vec![],
                    (Some(false), _) => vec![state.clone()],
                    (None, Some(true)) if may_put => vec![put],
                    (None, Some(true)) => vec![],
                    (None, Some(false)) => vec![state.clone()],
                    (None, None) if may_put => vec![put, state.clone()],
                    (None, None) => vec![state.clone()],
                }
            }
            KeyOp::Revoke { lease } => match state {
                Some(s) if s.lease == *lease => vec![None],
                _ => vec![state.clone()],
            },
        }
    }
}

/// Every event the watchers saw, by revision and key; conflicting reports are violations.
struct Union {
    events: BTreeMap<i64, BTreeMap<String, Option<u64>>>,
    /// Revision ranges some watcher of every key covered without a gap.
    covered: Vec<(i64, i64)>,
}

impl Union {
    fn is_covered(&self, rev: i64) -> bool {
        self.covered.iter().any(|&(a, b)| a <= rev && rev <= b)
    }
}

/// The revisions a segment vouches for: from its start to its last event.
fn coverage(seg: &Segment) -> Option<(i64, i64)> {
    let last = seg.responses.last()?.last()?.rev;
    Some((seg.start, last))
}

fn check_watches(segments: &[Segment], v: &mut Vec<String>) -> Union {
    let mut events: BTreeMap<i64, BTreeMap<String, Option<u64>>> = BTreeMap::new();
    for seg in segments {
        let mut last = 0i64;
        let mut seen: HashSet<(i64, String)> = HashSet::new();
        let mut response_of: HashMap<i64, usize> = HashMap::new();
        for (ri, resp) in seg.responses.iter().enumerate() {
            for e in resp {
                if e.rev < seg.start {
                    v.push(format!(
                        "watcher {} on {} from {}: event at {} before its start",
                        seg.watcher, seg.prefix, seg.start, e.rev
                    ));
                }
                if e.rev < last {
                    v.push(format!(
                        "watcher {} on {}: event at {} after one at {} (out of order)",
                        seg.watcher, seg.prefix, e.rev, last
                    ));
                }
                last = last.max(e.rev);
                if !seen.insert((e.rev, e.key.clone())) {
                    v.push(format!("watcher {}: {} at {} delivered twice", seg.watcher, e.key, e.rev));
                }
                if !e.key.starts_with(&seg.prefix) {
                    v.push(format!("watcher {} on {}: event for {}", seg.watcher, seg.prefix, e.key));
                }
                if *response_of.entry(e.rev).or_insert(ri) != ri {
                    v.push(format!(
                        "watcher {}: the events of revision {} came in more than one response (not atomic)",
                        seg.watcher, e.rev
                    ));
                }
                let at = events.entry(e.rev).or_default();
                match at.get(&e.key) {
                    Some(other) if *other != e.val => v.push(format!(
                        "watchers disagree about {} at revision {}: {:?} and {:?}",
                        e.key, e.rev, other, e.val
                    )),
                    _ => {
                        at.insert(e.key.clone(), e.val);
                    }
                }
            }
        }
    }
    let mut union = Union { events, covered: Vec::new() };
    for seg in segments.iter().filter(|s| s.prefix == "/lin/") {
        if let Some(c) = coverage(seg) {
            union.covered.push(c);
        }
    }
    // Completeness: each segment holds every event of its prefix in the range it covers.
    for seg in segments {
        let Some((a, b)) = coverage(seg) else { continue };
        let mut got: BTreeMap<i64, Vec<&Ev>> = BTreeMap::new();
        for e in seg.responses.iter().flatten() {
            got.entry(e.rev).or_default().push(e);
        }
        for (rev, at) in union.events.range(a..=b) {
            for (key, val) in at.iter().filter(|(k, _)| k.starts_with(&seg.prefix)) {
                let has = got.get(rev).is_some_and(|es| es.iter().any(|e| &e.key == key && e.val == *val));
                if !has {
                    v.push(format!(
                        "watcher {} on {} (from {} to {}) missed {key} at revision {rev} (seen by another watcher)",
                        seg.watcher, seg.prefix, a, b
                    ));
                }
            }
        }
    }
    union
}

/// Checks the operations against the watchers' events: no phantom values, the revisions agree, and
/// no acknowledged write is missing where the watchers covered it.
fn check_writes(records: &[Record], union: &Union, v: &mut Vec<String>, lost: &mut Vec<String>) {
    let mut by_val: HashMap<u64, &Record> = HashMap::new();
    for r in records {
        if let Call::Put { val, .. } | Call::Cas { val, .. } = r.call {
            by_val.insert(val, r);
        }
    }
    for (rev, at) in &union.events {
        for (key, val) in at {
            let Some(val) = val else { continue };
            let Some(r) = by_val.get(val) else {
                v.push(format!(
                    "a watcher saw {key} = {} at {rev}, which no client wrote",
                    workload::value_text(*val)
                ));
                continue;
            };
            let wrote_key = match r.call {
                Call::Put { key: k, .. } | Call::Cas { key: k, .. } => key_name(k) == *key,
                _ => false,
            };
            if !wrote_key {
                v.push(format!(
                    "a watcher saw {} under {key} at {rev}, written to another key",
                    workload::value_text(*val)
                ));
            }
            match r.out {
                Out::Put { rev: r2 } | Out::Cas { ok: true, rev: r2 } if r2 != *rev => v.push(format!(
                    "{} was acknowledged at revision {r2} but watched at {rev}",
                    workload::value_text(*val)
                )),
                Out::Cas { ok: false, .. } | Out::Failed(_) => v.push(format!(
                    "{} was refused ({:?}) but a watcher saw it at {rev}",
                    workload::value_text(*val),
                    r.out
                )),
                _ => {}
            }
        }
    }
    for r in records {
        let (key, val, rev) = match (&r.call, &r.out) {
            (Call::Put { key, val, .. }, Out::Put { rev }) => (*key, *val, *rev),
            (Call::Cas { key, val, .. }, Out::Cas { ok: true, rev }) => (*key, *val, *rev),
            _ => continue,
        };
        if !union.is_covered(rev) {
            continue;
        }
        let found =
            union.events.get(&rev).and_then(|at| at.get(&key_name(key))).is_some_and(|x| *x == Some(val));
        if !found {
            lost.push(format!(
                "{} = {} acknowledged at revision {rev} (client {}) is not in the watched history",
                key_name(key),
                workload::value_text(val),
                r.client
            ));
        }
    }
}

/// The revision a response carries, and whether the operation made a new one (a put, a
/// compare-and-swap that put, a delete that deleted); None without a response.
fn revision_of(out: &Out) -> Option<(i64, bool)> {
    match *out {
        Out::Put { rev } => Some((rev, true)),
        Out::Cas { ok, rev } => Some((rev, ok)),
        Out::Delete { deleted, rev } => Some((rev, deleted > 0)),
        Out::Get { rev, .. } | Out::Revoke { rev } => Some((rev, false)),
        Out::Unknown(_) | Out::Failed(_) => None,
    }
}

/// Revisions: real-time order (a response never shows an older revision than one that returned
/// before its request was sent; a write's revision is newer than all of those) and unique writes.
fn check_revisions(records: &[Record], v: &mut Vec<String>) {
    let mut writes: HashMap<i64, &Record> = HashMap::new();
    let floor = revision_floor(records);
    for r in records {
        let Some((rev, bumps)) = revision_of(&r.out) else { continue };
        if bumps {
            if let Some(other) = writes.insert(rev, r) {
                v.push(format!(
                    "two writes acknowledged at revision {rev}: {:?} and {:?}",
                    other.call, r.call
                ));
            }
        }
        let floor = floor(r.call_ns);
        if rev < floor || (bumps && rev == floor) {
            v.push(format!(
                "{:?} at revision {rev} (client {}) after a response at revision {floor} had returned",
                r.call, r.client
            ));
        }
    }
}

/// Builds each key's history for the linearizability check. Writes with an unknown outcome are
/// settled from the watched history where it is complete: a value that was watched was applied
/// (at the watched revision), one that was not was never applied.
fn key_histories(records: &[Record], union: &Union) -> Vec<Vec<Timed<KeyOp>>> {
    let mut watched: HashMap<u64, i64> = HashMap::new();
    for (rev, at) in &union.events {
        for val in at.values().flatten() {
            watched.insert(*val, *rev);
        }
    }
    // A write is applied after the newest revision any response had shown before it was sent, and
    // before the last watched one; where the watchers covered all of that window without a gap, a
    // value they did not see was never written.
    let last = union.events.keys().last().copied().unwrap_or(0);
    let merged = merge(&union.covered);
    let floor = revision_floor(records);
    let settled = |r: &Record| covers(&merged, floor(r.call_ns) + 1, last);
    let mut per_key: Vec<Vec<Timed<KeyOp>>> = (0..KEYS).map(|_| Vec::new()).collect();
    let mut lease_keys: HashMap<i64, HashSet<usize>> = HashMap::new();
    for r in records {
        if let Call::Put { key, lease, .. } = r.call {
            if lease != 0 && !matches!(r.out, Out::Failed(_)) {
                lease_keys.entry(lease).or_default().insert(key);
            }
        }
    }
    for r in records {
        let known = !matches!(r.out, Out::Unknown(_));
        let ret = known.then_some(r.ret_ns);
        let mut push = |key: usize, op: KeyOp, ret: Option<u64>| {
            per_key[key].push(Timed { call: r.call_ns, ret, op });
        };
        match (&r.call, &r.out) {
            (_, Out::Failed(_)) => {}
            (Call::Put { key, val, lease }, Out::Put { rev }) => {
                push(*key, KeyOp::Put { val: *val, rev: Some(*rev), lease: *lease }, ret)
            }
            (Call::Put { key, val, lease }, _) => match watched.get(val) {
                Some(rev) => push(*key, KeyOp::Put { val: *val, rev: Some(*rev), lease: *lease }, None),
                None if settled(r) => {}
                None => push(*key, KeyOp::Put { val: *val, rev: None, lease: *lease }, None),
            },
            (Call::Get { key }, Out::Get { kv, .. }) => {
                push(*key, KeyOp::Get { kv: kv.map(|(v, r, _)| (v, r)) }, ret)
            }
            (Call::Get { .. }, _) => {}
            (Call::Delete { key }, Out::Delete { deleted, .. }) => {
                push(*key, KeyOp::Delete { deleted: Some(*deleted) }, ret)
            }
            (Call::Delete { key }, _) => push(*key, KeyOp::Delete { deleted: None }, None),
            (Call::Cas { key, expect, val }, Out::Cas { ok, rev }) => push(
                *key,
                KeyOp::Cas { expect: *expect, val: *val, ok: Some(*ok), rev: ok.then_some(*rev) },
                ret,
            ),
            (Call::Cas { key, expect, val }, _) => match watched.get(val) {
                Some(rev) => push(
                    *key,
                    KeyOp::Cas { expect: *expect, val: *val, ok: Some(true), rev: Some(*rev) },
                    None,
                ),
                None if settled(r) => {}
                None => push(*key, KeyOp::Cas { expect: *expect, val: *val, ok: None, rev: None }, None),
            },
            (Call::Revoke { lease }, _) => {
                for key in lease_keys.get(lease).into_iter().flatten() {
                    push(*key, KeyOp::Revoke { lease: *lease }, ret);
                }
            }
        }
    }
    per_key
}

/// The ranges merged into disjoint ones, in order.
fn merge(ranges: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut r = ranges.to_vec();
    r.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether merged ranges cover every revision in from..=to.
fn covers(merged: &[(i64, i64)], from: i64, to: i64) -> bool {
    from > to || merged.iter().any(|&(a, b)| a <= from && to <= b)
}

/// For a time: the newest revision any response that returned before it showed.
fn revision_floor(records: &[Record]) -> impl Fn(u64) -> i64 {
    let mut done: Vec<(u64, i64)> =
        records.iter().filter_map(|r| revision_of(&r.out).map(|(rev, _)| (r.ret_ns, rev))).collect();
    done.sort_unstable();
    let mut max = 0;
    for d in done.iter_mut() {
        max = max.max(d.1);
        d.1 = max;
    }
    move |t| {
        let i = done.partition_point(|&(ret, _)| ret < t);
        if i == 0 {
            0
        } else {
            done[i - 1].1
        }
    }
}

pub fn check_all(rt: &tokio::runtime::Runtime, sh: &Shared, urls: &[String]) -> Checks {
    let mut c = Checks::default();
    // The members agree: the same revision and HashKV everywhere once the writes stop.
    let agreed = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut revs = Vec::new();
            for url in urls {
                let status = async {
                    let mut cl = workload::connect(url).await?;
                    cl.status().await.ok()
                };
                let r = tokio::time::timeout(Duration::from_secs(2), status).await.ok().flatten();
                revs.push(r.and_then(|s| s.header().map(|h| h.revision())));
            }
            if revs.iter().all(|r| r.is_some() && *r == revs[0]) {
                let rev = revs[0].unwrap_or(0);
                let mut hashes = Vec::new();
                for url in urls {
                    let hash = async {
                        let mut cl = workload::connect(url).await?;
                        cl.hash_kv(rev).await.ok()
                    };
                    hashes.push(
                        tokio::time::timeout(Duration::from_secs(5), hash)
                            .await
                            .ok()
                            .flatten()
                            .map(|h| h.hash()),
                    );
                }
                return Ok((rev, hashes));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("the members did not reach the same revision in 15 s: {revs:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    match agreed {
        Ok((rev, hashes)) => {
            if hashes.iter().any(|h| h.is_none() || *h != hashes[0]) {
                c.violations.push(format!("HashKV at revision {rev} differs between members: {hashes:?}"));
            }
        }
        Err(e) => c.violations.push(e),
    }
    // Every member's linearizable read of every key, into the history.
    rt.block_on(async {
        for (i, url) in urls.iter().enumerate() {
            let Some(mut cl) = workload::connect(url).await else {
                c.violations.push(format!("member {} does not answer after healing", i + 1));
                continue;
            };
            for k in 0..KEYS {
                workload::record(sh, FINAL_CLIENT + 1 + i, i, &mut cl, Call::Get { key: k }).await;
            }
        }
    });
    let records = sh.records.lock().unwrap().clone();
    let segments = sh.segments.lock().unwrap().clone();
    c.operations = records.len();
    c.unknown = records.iter().filter(|r| matches!(r.out, Out::Unknown(_))).count();
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for r in &records {
        if let Out::Unknown(why) | Out::Failed(why) = &r.out {
            *reasons.entry(why.clone()).or_default() += 1;
        }
    }
    c.reasons = reasons.into_iter().collect();
    c.reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    c.watch_events = segments.iter().map(|s| s.responses.iter().map(Vec::len).sum::<usize>()).sum();
    for r in records.iter().filter(|r| r.client > FINAL_CLIENT) {
        if !matches!(r.out, Out::Get { .. }) {
            c.violations.push(format!(
                "a final read failed after healing: {:?} on member {}",
                r.out,
                r.endpoint + 1
            ));
        }
    }
    let union = check_watches(&segments, &mut c.violations);
    check_writes(&records, &union, &mut c.violations, &mut c.lost);
    check_revisions(&records, &mut c.violations);
    let histories = key_histories(&records, &union);
    for (k, h) in histories.iter().enumerate() {
        let limit = Duration::from_secs(60) + Duration::from_millis(h.len() as u64);
        match lincheck::check(&KeyModel, h, limit) {
            Verdict::Linearizable => {}
            Verdict::Violation { longest } => c.violations.push(format!(
                "{} is not linearizable: {} operations, at most {longest} of them in a valid order",
                key_name(k),
                h.len(),
            )),
            Verdict::Unknown => c.violations.push(format!(
                "{}: the linearizability search did not finish in {limit:?} ({} operations)",
                key_name(k),
                h.len()
            )),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(client: usize, call_ns: u64, ret_ns: u64, call: Call, out: Out) -> Record {
        Record { client, call_ns, ret_ns, endpoint: 0, call, out }
    }

    #[test]
    fn the_key_model_accepts_etcds_behaviour_and_rejects_a_lost_or_stale_write() {
        let put =
            |val, rev| Timed { call: 0, ret: Some(1), op: KeyOp::Put { val, rev: Some(rev), lease: 0 } };
        let ok = vec![
            put(1, 5),
            Timed { call: 2, ret: Some(3), op: KeyOp::Get { kv: Some((1, 5)) } },
            Timed {
                call: 4,
                ret: Some(5),
                op: KeyOp::Cas { expect: 5, val: 2, ok: Some(true), rev: Some(9) },
            },
            Timed { call: 6, ret: Some(7), op: KeyOp::Cas { expect: 5, val: 3, ok: Some(false), rev: None } },
            Timed { call: 8, ret: Some(9), op: KeyOp::Delete { deleted: Some(1) } },
            Timed { call: 10, ret: Some(11), op: KeyOp::Get { kv: None } },
        ];
        assert_eq!(lincheck::check(&KeyModel, &ok, Duration::from_secs(5)), Verdict::Linearizable);
        // A read after the CAS returned that still sees the old value.
        let mut stale = ok.clone();
        stale[4] = Timed { call: 8, ret: Some(9), op: KeyOp::Get { kv: Some((1, 5)) } };
        assert!(matches!(
            lincheck::check(&KeyModel, &stale, Duration::from_secs(5)),
            Verdict::Violation { .. }
        ));
        // A lease revoke removes the key it was attached to.
        let leased = vec![
            Timed { call: 0, ret: Some(1), op: KeyOp::Put { val: 1, rev: Some(3), lease: 77 } },
            Timed { call: 2, ret: Some(3), op: KeyOp::Revoke { lease: 77 } },
            Timed { call: 4, ret: Some(5), op: KeyOp::Get { kv: Some((1, 3)) } },
        ];
        assert!(matches!(
            lincheck::check(&KeyModel, &leased, Duration::from_secs(5)),
            Verdict::Violation { .. }
        ));
    }

    #[test]
    fn revisions_that_go_back_in_real_time_or_repeat_are_violations() {
        let good = vec![
            rec(0, 0, 10, Call::Put { key: 0, val: 1, lease: 0 }, Out::Put { rev: 5 }),
            rec(1, 11, 20, Call::Get { key: 0 }, Out::Get { kv: Some((1, 5, 0)), rev: 5 }),
            rec(0, 21, 30, Call::Put { key: 1, val: 2, lease: 0 }, Out::Put { rev: 6 }),
        ];
        let mut v = Vec::new();
        check_revisions(&good, &mut v);
        assert!(v.is_empty(), "{v:?}");
        // A read that started after revision 6 was acknowledged but answers at 5.
        let mut bad = good.clone();
        bad.push(rec(2, 31, 40, Call::Get { key: 0 }, Out::Get { kv: Some((1, 5, 0)), rev: 5 }));
        check_revisions(&bad, &mut v);
        assert_eq!(v.len(), 1, "{v:?}");
        // Two puts at the same revision.
        let mut v = Vec::new();
        let mut dup = good.clone();
        dup.push(rec(3, 0, 50, Call::Put { key: 2, val: 3, lease: 0 }, Out::Put { rev: 6 }));
        check_revisions(&dup, &mut v);
        assert!(v.iter().any(|s| s.contains("two writes")), "{v:?}");
    }

    fn seg(
        watcher: usize,
        prefix: &str,
        start: i64,
        responses: Vec<Vec<(i64, &str, Option<u64>)>>,
    ) -> Segment {
        Segment {
            watcher,
            endpoint: 0,
            prefix: prefix.into(),
            start,
            compacted: None,
            responses: responses
                .into_iter()
                .map(|r| r.into_iter().map(|(rev, key, val)| Ev { rev, key: key.into(), val }).collect())
                .collect(),
            end: String::new(),
        }
    }

    #[test]
    fn a_watcher_that_misses_repeats_or_splits_events_is_caught() {
        let a = seg(
            0,
            "/lin/",
            1,
            vec![vec![(2, "/lin/k00", Some(1))], vec![(3, "/lin/k01", Some(2)), (3, "/lin/k02", None)]],
        );
        let mut v = Vec::new();
        check_watches(std::slice::from_ref(&a), &mut v);
        assert!(v.is_empty(), "{v:?}");
        // Misses revision 2, which another watcher saw.
        let b = seg(1, "/lin/", 1, vec![vec![(3, "/lin/k01", Some(2)), (3, "/lin/k02", None)]]);
        check_watches(&[a.clone(), b], &mut v);
        assert!(v.iter().any(|s| s.contains("missed /lin/k00 at revision 2")), "{v:?}");
        // Splits revision 3 over two responses, and repeats an event.
        let mut v = Vec::new();
        let c = seg(
            2,
            "/lin/",
            1,
            vec![
                vec![(2, "/lin/k00", Some(1)), (3, "/lin/k01", Some(2))],
                vec![(3, "/lin/k02", None), (3, "/lin/k02", None)],
            ],
        );
        check_watches(&[c], &mut v);
        assert!(v.iter().any(|s| s.contains("not atomic")), "{v:?}");
        assert!(v.iter().any(|s| s.contains("twice")), "{v:?}");
    }

    #[test]
    fn an_acknowledged_write_missing_from_a_complete_watch_is_lost() {
        let a = seg(0, "/lin/", 1, vec![vec![(2, "/lin/k00", Some(1))], vec![(4, "/lin/k01", Some(3))]]);
        let mut v = Vec::new();
        let union = check_watches(&[a], &mut v);
        let records = vec![
            rec(0, 0, 10, Call::Put { key: 0, val: 1, lease: 0 }, Out::Put { rev: 2 }),
            rec(0, 11, 20, Call::Put { key: 1, val: 2, lease: 0 }, Out::Put { rev: 3 }),
            rec(1, 11, 20, Call::Put { key: 1, val: 3, lease: 0 }, Out::Put { rev: 4 }),
        ];
        let mut lost = Vec::new();
        check_writes(&records, &union, &mut v, &mut lost);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].contains("v2"), "{lost:?}");
    }
}
