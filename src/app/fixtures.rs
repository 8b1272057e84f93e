//! Fixed states for tests of `update` and of rendering: no network, no clock.

use std::time::{Duration, SystemTime};

use crate::app::cluster::{Alarm, AlarmKind, MemberInfo, MemberList, StatusInfo};
use crate::app::state::{Member, State};

pub const CLUSTER: u64 = 0xcdf818194e3a8c32;
pub const ID1: u64 = 0x8e9e05c52164694d;
pub const ID2: u64 = 0x91bc3c398fb3c146;
pub const ID3: u64 = 0xfd422379fda50e48;

/// 2026-11-21 23:40:12 UTC.
pub fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_304_412)
}

/// The client URL `info` gives a fixture member.
pub fn endpoint(id: u64) -> String {
    let n = [ID1, ID2, ID3, ID4, ID5].iter().position(|i| *i == id).map_or(9, |p| p + 1);
    format!("http://127.0.0.{n}:2379")
}

pub fn info(id: u64, n: u8) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("etcd-{n}"),
        peer_urls: vec![format!("http://127.0.0.{n}:2380")],
        client_urls: vec![format!("http://127.0.0.{n}:2379")],
        is_learner: false,
    }
}

pub fn member_list() -> MemberList {
    MemberList { cluster_id: CLUSTER, members: vec![info(ID1, 1), info(ID2, 2), info(ID3, 3)] }
}

pub fn status(member_id: u64, leader: u64, term: u64, index: u64, applied: u64) -> StatusInfo {
    StatusInfo {
        member_id,
        cluster_id: CLUSTER,
        revision: 1042,
        version: "3.4.23".into(),
        db_size: 2_101_248,
        db_size_in_use: 1_654_784,
        leader,
        raft_term: term,
        raft_index: index,
        raft_applied_index: applied,
        errors: vec![],
        alarms: vec![],
        is_learner: false,
        rtt: Duration::from_micros(850),
    }
}

/// Three members: etcd-1 leads, etcd-2 follows 3 entries behind with a NOSPACE alarm raised on it,
/// etcd-3 is down. Quorum holds (two of three).
pub fn degraded() -> State {
    let mut state =
        State::new(vec!["http://127.0.0.1:2379".into()], Some("root".into()), Duration::from_secs(2));
    state.cluster_id = Some(CLUSTER);
    state.wall = wall();
    state.refresh.completed = 4;
    state.refresh.completed_at = Some(wall());
    let nospace = Alarm { member_id: ID2, kind: AlarmKind::Nospace };
    let mut m1 = Member::new(info(ID1, 1));
    let mut s1 = status(ID1, ID1, 7, 5210, 5210);
    s1.alarms = vec![nospace];
    m1.status = Some(Ok(s1));
    m1.health = Some(Ok(Duration::from_micros(1900)));
    let mut m2 = Member::new(info(ID2, 2));
    let mut s2 = status(ID2, ID1, 7, 5210, 5207);
    s2.alarms = vec![nospace];
    s2.rtt = Duration::from_micros(1320);
    m2.status = Some(Ok(s2));
    m2.health = Some(Ok(Duration::from_micros(2400)));
    let mut m3 = Member::new(info(ID3, 3));
    let refused = "tcp connect error: Connection refused (os error 111)".to_string();
    m3.status = Some(Err(refused.clone()));
    m3.health = Some(Err(refused));
    state.members = vec![m1, m2, m3];
    state
}

/// The same three members, all up and healthy.
pub fn healthy() -> State {
    let mut state = degraded();
    for m in &mut state.members {
        let mut s = status(m.info.id, ID1, 7, 5210, 5210);
        s.rtt = Duration::from_micros(700);
        m.status = Some(Ok(s));
        m.health = Some(Ok(Duration::from_micros(1500)));
    }
    state
}

pub const ID4: u64 = 0x0a1b2c3d4e5f6071;
pub const ID5: u64 = 0x6c0ffee15600d042;

/// The healthy three plus a learner catching up and a member added but not started yet.
pub fn with_learner_and_unstarted() -> State {
    let mut state = healthy();
    let mut learner_info = info(ID4, 4);
    learner_info.is_learner = true;
    let mut learner = Member::new(learner_info);
    let mut s = status(ID4, ID1, 7, 5210, 4100);
    s.is_learner = true;
    s.db_size = 1_048_576;
    learner.status = Some(Ok(s));
    learner.health = Some(Ok(Duration::from_micros(2100)));
    let mut unstarted_info = info(ID5, 5);
    unstarted_info.name.clear();
    unstarted_info.client_urls.clear();
    state.members.push(learner);
    state.members.push(Member::new(unstarted_info));
    state
}
