//! etcd 3.4's backend, read from its bbolt file (a snapshot, or member/snap/db): the `key` bucket's
//! revisions, `meta`'s consistent index and compaction, leases, alarms and the auth store, decoded
//! from etcd's protobufs (mvcc/mvccpb, lease/leasepb, auth/authpb, etcdserverpb.AlarmMember).
//!
//! Keys come one at a time through a callback, so a large backend is never held in memory; the
//! rest (leases, alarms, users, roles) is small and returned whole.

use std::path::Path;

use super::bbolt::{BoltError, BoltFile};

/// A revision as etcd's key bucket spells it: main and sub, and whether it deletes the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
    pub tombstone: bool,
}

/// mvccpb.KeyValue. A deletion's record holds only the key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: Vec<u8>,
    pub lease: i64,
}

/// authpb.Permission: READ 0, WRITE 1, READWRITE 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub perm_type: i64,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// authpb.User: the password is its bcrypt hash (empty with no_password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: Vec<u8>,
    pub roles: Vec<String>,
    pub no_password: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// Everything but the keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backend {
    /// The raft index of the last entry applied (meta/consistent_index).
    pub consistent_index: u64,
    /// The last compaction finished (meta/finishedCompactRev), and the last scheduled.
    pub compacted: i64,
    pub scheduled_compaction: i64,
    /// (lease ID, TTL in seconds).
    pub leases: Vec<(i64, i64)>,
    /// (member ID, alarm type: 1 NOSPACE, 2 CORRUPT).
    pub alarms: Vec<(u64, i64)>,
    pub auth_enabled: bool,
    pub auth_revision: u64,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
}

/// One protobuf field: its number and its value (varint, or bytes for length-delimited).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        x |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(x);
        }
    }
    None
}

/// The fields of a protobuf message, in order; None if it is malformed.
fn fields(mut b: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b)?;
        let field = match tag & 7 {
            0 => Field::Varint(varint(&mut b)?),
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                let bytes = b.get(..len)?;
                b = &b[len..];
                Field::Bytes(bytes)
            }
            1 => {
                b = b.get(8..)?;
                continue;
            }
            5 => {
                b = b.get(4..)?;
                continue;
            }
            _ => return None,
        };
        out.push((tag >> 3, field));
    }
    Some(out)
}

fn key_value(b: &[u8]) -> Option<KeyValue> {
    let mut kv = KeyValue::default();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => kv.key = x.to_vec(),
            (2, Field::Varint(x)) => kv.create_revision = x as i64,
            (3, Field::Varint(x)) => kv.mod_revision = x as i64,
            (4, Field::Varint(x)) => kv.version = x as i64,
            (5, Field::Bytes(x)) => kv.value = x.to_vec(),
            (6, Field::Varint(x)) => kv.lease = x as i64,
            _ => {}
        }
    }
    Some(kv)
}

fn user(b: &[u8]) -> Option<User> {
    let mut u = User { name: String::new(), password: Vec::new(), roles: Vec::new(), no_password: false };
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => u.name = String::from_utf8_lossy(x).into_owned(),
            (2, Field::Bytes(x)) => u.password = x.to_vec(),
            (3, Field::Bytes(x)) => u.roles.push(String::from_utf8_lossy(x).into_owned()),
            (4, Field::Bytes(x)) => {
                u.no_password =
                    fields(x)?.iter().any(|(n, f)| *n == 1 && matches!(f, Field::Varint(v) if *v != 0));
            }
            _ => {}
        }
    }
    Some(u)
}

fn role(b: &[u8]) -> Option<Role> {
    let mut r = Role { name: String::new(), permissions: Vec::new() };
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => r.name = String::from_utf8_lossy(x).into_owned(),
            (2, Field::Bytes(x)) => {
                let mut p = Permission { perm_type: 0, key: Vec::new(), range_end: Vec::new() };
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Field::Varint(v)) => p.perm_type = v as i64,
                        (2, Field::Bytes(v)) => p.key = v.to_vec(),
                        (3, Field::Bytes(v)) => p.range_end = v.to_vec(),
                        _ => {}
                    }
                }
                r.permissions.push(p);
            }
            _ => {}
        }
    }
    Some(r)
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// A key of the `key` bucket: 8 bytes of main revision (big-endian), '_', 8 of sub, and 't' for a
/// deletion.
fn revision(k: &[u8]) -> Option<Revision> {
    let tombstone = match k.len() {
        17 => false,
        18 if k[17] == b't' => true,
        _ => return None,
    };
    if k[8] != b'_' {
        return None;
    }
    Some(Revision { main: be_u64(&k[..8])? as i64, sub: be_u64(&k[9..17])? as i64, tombstone })
}

/// meta's consistent_index alone (0 when there is none), without reading the keys.
pub fn consistent_index(path: &Path) -> Result<u64, BoltError> {
    let db = BoltFile::open(path)?;
    let mut index = 0;
    for (name, bucket) in db.buckets()? {
        if name != b"meta" {
            continue;
        }
        db.for_each(&bucket, |k, v, nested| {
            if nested.is_none() && k == b"consistent_index" {
                index = be_u64(v).ok_or_else(|| BoltError {
                    path: path.to_path_buf(),
                    offset: 0,
                    what: "bucket \"meta\", key \"consistent_index\": not 8 bytes".into(),
                })?;
            }
            Ok(())
        })?;
    }
    Ok(index)
}

/// Reads the backend at `path`: `on_key` gets every record of the `key` bucket in revision order;
/// the rest is returned. A record that does not decode is an error naming the bucket and key.
pub fn read(
    path: &Path,
    mut on_key: impl FnMut(Revision, KeyValue) -> Result<(), String>,
) -> Result<Backend, BoltError> {
    let db = BoltFile::open(path)?;
    let bad = |bucket: &str, key: &[u8], what: &str| BoltError {
        path: path.to_path_buf(),
        offset: 0,
        what: format!("bucket {bucket:?}, key {:?}: {what}", String::from_utf8_lossy(key)),
    };
    let mut out = Backend::default();
    for (name, bucket) in db.buckets()? {
        let name = String::from_utf8_lossy(&name).into_owned();
        db.for_each(&bucket, |k, v, nested| {
            if nested.is_some() {
                return Ok(());
            }
            match name.as_str() {
                "key" => {
                    let rev = revision(k).ok_or_else(|| bad(&name, k, "not a revision"))?;
                    let kv = key_value(v).ok_or_else(|| bad(&name, k, "not an mvccpb.KeyValue"))?;
                    on_key(rev, kv).map_err(|e| bad(&name, k, &e))?;
                }
                "meta" => {
                    let number = || be_u64(v).ok_or_else(|| bad(&name, k, "not 8 bytes"));
                    match k {
                        b"consistent_index" => out.consistent_index = number()?,
                        b"finishedCompactRev" => out.compacted = number()? as i64,
                        b"scheduledCompactRev" => out.scheduled_compaction = number()? as i64,
                        _ => {}
                    }
                }
                "lease" => {
                    let mut lease = (0i64, 0i64);
                    for (n, f) in fields(v).ok_or_else(|| bad(&name, k, "not a leasepb.Lease"))? {
                        match (n, f) {
                            (1, Field::Varint(x)) => lease.0 = x as i64,
                            (2, Field::Varint(x)) => lease.1 = x as i64,
                            _ => {}
                        }
                    }
                    out.leases.push(lease);
                }
                "alarm" => {
                    let mut alarm = (0u64, 0i64);
                    for (n, f) in fields(k).ok_or_else(|| bad(&name, k, "not an AlarmMember"))? {
                        match (n, f) {
                            (1, Field::Varint(x)) => alarm.0 = x,
                            (2, Field::Varint(x)) => alarm.1 = x as i64,
                            _ => {}
                        }
                    }
                    out.alarms.push(alarm);
                }
                "auth" => match k {
                    b"authEnabled" => out.auth_enabled = v.first() == Some(&1),
                    b"authRevision" => {
                        out.auth_revision = be_u64(v).ok_or_else(|| bad(&name, k, "not 8 bytes"))?
                    }
                    _ => {}
                },
                "authUsers" => out.users.push(user(v).ok_or_else(|| bad(&name, k, "not an authpb.User"))?),
                "authRoles" => out.roles.push(role(v).ok_or_else(|| bad(&name, k, "not an authpb.Role"))?),
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// etcd's buckets, in the order bbolt keeps them (bytewise), as etcd 3.4 creates them.
pub const BUCKETS: [&str; 10] = [
    "alarm",
    "auth",
    "authRoles",
    "authUsers",
    "cluster",
    "key",
    "lease",
    "members",
    "members_removed",
    "meta",
];

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A varint field, left out when 0 as proto3 does.
fn put_number(out: &mut Vec<u8>, field: u64, x: u64) {
    if x != 0 {
        put_varint(out, field << 3);
        put_varint(out, x);
    }
}

/// A length-delimited field, left out when empty as proto3 does.
fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    if !b.is_empty() {
        put_varint(out, field << 3 | 2);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
}

/// The key bucket's key of a revision.
pub fn revision_key(rev: Revision) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.extend_from_slice(&(rev.main as u64).to_be_bytes());
    k.push(b'_');
    k.extend_from_slice(&(rev.sub as u64).to_be_bytes());
    if rev.tombstone {
        k.push(b't');
    }
    k
}

/// mvccpb.KeyValue as etcd marshals it (fields in order, zeros left out).
pub fn encode_key_value(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(kv.key.len() + kv.value.len() + 24);
    let numbers = [kv.create_revision, kv.mod_revision, kv.version, kv.lease];
    encode_key_value_into(&mut out, &kv.key, numbers, &kv.value);
    out
}

/// The length of mvccpb.KeyValue as `encode_key_value_into` writes it, without writing it.
pub fn key_value_len(key_len: usize, numbers: [i64; 4], value_len: usize) -> usize {
    fn varint_len(x: u64) -> usize {
        (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
    }
    let bytes = |n: usize| if n == 0 { 0 } else { 1 + varint_len(n as u64) + n };
    let number = |x: i64| if x == 0 { 0 } else { 1 + varint_len(x as u64) };
    bytes(key_len) + numbers.iter().map(|x| number(*x)).sum::<usize>() + bytes(value_len)
}

/// mvccpb.KeyValue appended to `out`: the key, [create revision, mod revision, version, lease] and
/// the value.
pub fn encode_key_value_into(out: &mut Vec<u8>, key: &[u8], numbers: [i64; 4], value: &[u8]) {
    let [create_revision, mod_revision, version, lease] = numbers;
    put_bytes(out, 1, key);
    put_number(out, 2, create_revision as u64);
    put_number(out, 3, mod_revision as u64);
    put_number(out, 4, version as u64);
    put_bytes(out, 5, value);
    put_number(out, 6, lease as u64);
}

/// leasepb.Lease{ID, TTL}.
pub fn encode_lease(id: i64, ttl: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_number(&mut out, 1, id as u64);
    put_number(&mut out, 2, ttl as u64);
    out
}

/// etcdserverpb.AlarmMember{memberID, alarm}, the alarm bucket's key.
pub fn encode_alarm_member(member: u64, alarm: i64) -> Vec<u8> {
    let mut out = Vec::new();
    put_number(&mut out, 1, member);
    put_number(&mut out, 2, alarm as u64);
    out
}

/// authpb.User.
pub fn encode_user(u: &User) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, u.name.as_bytes());
    put_bytes(&mut out, 2, &u.password);
    for r in &u.roles {
        put_bytes(&mut out, 3, r.as_bytes());
    }
    if u.no_password {
        put_bytes(&mut out, 4, &[0x08, 1]);
    }
    out
}

/// authpb.Role.
pub fn encode_role(r: &Role) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, r.name.as_bytes());
    for p in &r.permissions {
        let mut perm = Vec::new();
        put_number(&mut perm, 1, p.perm_type as u64);
        put_bytes(&mut perm, 2, &p.key);
        put_bytes(&mut perm, 3, &p.range_end);
        // An empty Permission (READ on nothing) still takes its place in the list.
        put_varint(&mut out, 2 << 3 | 2);
        put_varint(&mut out, perm.len() as u64);
        out.extend_from_slice(&perm);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_value_len_is_the_encoded_length() {
        for (k, numbers, v) in [
            (0usize, [0i64, 0, 0, 0], 0usize),
            (3, [1, 1, 1, 0], 5),
            (17, [127, 128, 16_384, 1 << 40], 300),
            (1, [-1, i64::MAX, 2, 3], 70_000),
        ] {
            let mut out = Vec::new();
            super::encode_key_value_into(&mut out, &vec![b'k'; k], numbers, &vec![b'v'; v]);
            assert_eq!(super::key_value_len(k, numbers, v), out.len(), "{k} {numbers:?} {v}");
        }
    }

    use super::*;

    #[test]
    fn protobufs_and_revisions_decode_as_etcd_writes_them() {
        // mvccpb.KeyValue{key "a", create 2, mod 3, version 2, value "v", lease 7}
        let kv = key_value(&[0x0a, 1, b'a', 0x10, 2, 0x18, 3, 0x20, 2, 0x2a, 1, b'v', 0x30, 7]).unwrap();
        assert_eq!(
            kv,
            KeyValue {
                key: b"a".to_vec(),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                value: b"v".to_vec(),
                lease: 7
            }
        );
        let mut k = 5u64.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&1u64.to_be_bytes());
        assert_eq!(revision(&k), Some(Revision { main: 5, sub: 1, tombstone: false }));
        k.push(b't');
        assert_eq!(revision(&k), Some(Revision { main: 5, sub: 1, tombstone: true }));
        assert_eq!(revision(&k[..10]), None);
        // A length past the end, and a varint that never ends, are refused.
        assert!(key_value(&[0x0a, 9, b'a']).is_none());
        assert!(key_value(&[0x10, 0xff, 0xff]).is_none());
        // authpb.User{name "u", password "h", roles ["r1", "r2"], options{no_password true}}
        let u =
            user(&[0x0a, 1, b'u', 0x12, 1, b'h', 0x1a, 2, b'r', b'1', 0x1a, 2, b'r', b'2', 0x22, 2, 0x08, 1])
                .unwrap();
        assert_eq!((u.name.as_str(), u.roles.len(), u.no_password), ("u", 2, true));
    }
}
