//! etcd's KV requests applied to the MVCC store, with etcd's semantics (etcdserver/apply.go and the
//! request checks of api/v3rpc/key.go): Range with limit/more/count, revision, sort order and target,
//! keys_only, count_only and the min/max mod and create revision filters; Put with prev_kv, lease,
//! ignore_value and ignore_lease; DeleteRange with prev_kv; Txn with every compare target and result,
//! nested transactions, one revision for all its writes, and etcd's refusal of a key written twice.
//!
//! `validate_*` are the checks etcd makes before a request enters raft; `apply_*` run when the entry
//! is committed. Leases are the lessor's: `leases` answers whether one exists.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use etcd_client::proto::{
    PbCompare, PbDeleteRequest, PbDeleteResponse, PbKeyValue, PbPutRequest, PbPutResponse, PbRangeRequest,
    PbRangeResponse, PbResponseHeader, PbResponseOp, PbTargetUnion, PbTxnOpRequest, PbTxnOpResponse,
    PbTxnRequest, PbTxnRequestOp, PbTxnResponse,
};

use crate::node::error::NodeError;
use crate::node::mvcc::store::{KeyValue, Store, WriteTxn};

// etcd's enum values (rpc.proto): RangeRequest.SortOrder, RangeRequest.SortTarget,
// Compare.CompareResult, Compare.CompareTarget.
const SORT_NONE: i32 = 0;
const SORT_ASCEND: i32 = 1;
const SORT_DESCEND: i32 = 2;
const TARGET_KEY: i32 = 0;
const TARGET_VERSION: i32 = 1;
const TARGET_CREATE: i32 = 2;
const TARGET_MOD: i32 = 3;
const TARGET_VALUE: i32 = 4;
const RESULT_EQUAL: i32 = 0;
const RESULT_GREATER: i32 = 1;
const RESULT_LESS: i32 = 2;
const RESULT_NOT_EQUAL: i32 = 3;
const CMP_VERSION: i32 = 0;
const CMP_CREATE: i32 = 1;
const CMP_MOD: i32 = 2;
const CMP_VALUE: i32 = 3;
const CMP_LEASE: i32 = 4;

/// Answers whether a lease exists (the lessor's knowledge).
pub trait Leases {
    fn exists(&self, id: i64) -> bool;
}

impl<F: Fn(i64) -> bool> Leases for F {
    fn exists(&self, id: i64) -> bool {
        self(id)
    }
}

// ---- checks before raft (api/v3rpc/key.go) ----

pub fn validate_range(r: &PbRangeRequest) -> Result<(), NodeError> {
    if r.key.is_empty() {
        return Err(NodeError::EmptyKey);
    }
    Ok(())
}

pub fn validate_put(r: &PbPutRequest) -> Result<(), NodeError> {
    if r.key.is_empty() {
        return Err(NodeError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(NodeError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(NodeError::LeaseProvided);
    }
    Ok(())
}

pub fn validate_delete(r: &PbDeleteRequest) -> Result<(), NodeError> {
    if r.key.is_empty() {
        return Err(NodeError::EmptyKey);
    }
    Ok(())
}

/// etcd's checkTxnRequest (--max-txn-ops per list, recursively) and checkIntervals (no key written
/// twice in what one branch can execute, and no key both put and deleted).
pub fn validate_txn(r: &PbTxnRequest, max_txn_ops: usize) -> Result<(), NodeError> {
    check_txn_ops(r, max_txn_ops)?;
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    Ok(())
}

fn check_txn_ops(r: &PbTxnRequest, max: usize) -> Result<(), NodeError> {
    if r.compare.len() > max || r.success.len() > max || r.failure.len() > max {
        return Err(NodeError::TooManyOps);
    }
    for c in &r.compare {
        if c.key.is_empty() {
            return Err(NodeError::EmptyKey);
        }
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(PbTxnOpRequest::RequestRange(q)) => validate_range(q)?,
            Some(PbTxnOpRequest::RequestPut(q)) => validate_put(q)?,
            Some(PbTxnOpRequest::RequestDeleteRange(q)) => validate_delete(q)?,
            Some(PbTxnOpRequest::RequestTxn(t)) => check_txn_ops(t, max)?,
            None => {}
        }
    }
    Ok(())
}

/// A deleted interval: one key, or [key, end), or from key on when end is "\0".
struct Interval {
    key: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            return k == self.key.as_slice();
        }
        k >= self.key.as_slice() && (self.end == [0] || k < self.end.as_slice())
    }
}

fn check_intervals(ops: &[PbTxnRequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>), NodeError> {
    let mut dels: Vec<Interval> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                Some(Interval { key: d.key.clone(), end: d.range_end.clone() })
            }
            _ => None,
        })
        .collect();
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let Some(PbTxnOpRequest::RequestTxn(t)) = &op.request else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || dels.iter().any(|d| d.contains(k)) {
                return Err(NodeError::DuplicateKey);
            }
            puts.insert(k.clone());
        }
        for k in puts_else {
            // The same key in then and else is fine: only one of them runs.
            if (puts.contains(&k) && !puts_then.contains(&k)) || dels.iter().any(|d| d.contains(&k)) {
                return Err(NodeError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(PbTxnOpRequest::RequestPut(p)) = &op.request else { continue };
        if puts.contains(&p.key) || dels.iter().any(|d| d.contains(&p.key)) {
            return Err(NodeError::DuplicateKey);
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

// ---- apply (etcdserver/apply.go) ----

/// A response header holding the revision; the service completes the rest.
pub fn header(revision: i64) -> Option<PbResponseHeader> {
    Some(PbResponseHeader { revision, ..PbResponseHeader::default() })
}

fn pb(kv: KeyValue) -> PbKeyValue {
    kv.into()
}

/// A read outside any write: a Range request on its own.
pub fn apply_range(store: &Store, r: &PbRangeRequest) -> Result<PbRangeResponse, NodeError> {
    // Without values (keys_only unless sorted by value, count_only) the newest versions come
    // from memory.
    let values = !(r.count_only || r.keys_only && r.sort_target != TARGET_VALUE);
    let mut txn_free = |limit: usize, rev: i64| {
        if values {
            store.range(&r.key, &r.range_end, limit, rev)
        } else {
            store.range_keys_only(&r.key, &r.range_end, limit, rev)
        }
    };
    range_with(&mut txn_free, r)
}

fn range_in(txn: &WriteTxn<'_>, r: &PbRangeRequest) -> Result<PbRangeResponse, NodeError> {
    let mut read = |limit: usize, rev: i64| txn.range(&r.key, &r.range_end, limit, rev);
    range_with(&mut read, r)
}

fn range_with(
    read: &mut dyn FnMut(
        usize,
        i64,
    ) -> Result<
        crate::node::mvcc::store::RangeResult,
        crate::node::mvcc::error::MvccError,
    >,
    r: &PbRangeRequest,
) -> Result<PbRangeResponse, NodeError> {
    let filtered = r.sort_order != SORT_NONE
        || r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    // Read everything when sorting or filtering; otherwise one more than the limit, for `more`.
    let limit = if filtered || r.limit <= 0 { 0 } else { (r.limit as usize).saturating_add(1) };
    let found = read(limit, r.revision)?;
    let mut kvs = found.kvs;
    kvs.retain(|kv| {
        (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
            && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
            && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
            && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
    });
    // etcd sorts ascending by default when the target is not the key (results come in key order).
    let order =
        if r.sort_target != TARGET_KEY && r.sort_order == SORT_NONE { SORT_ASCEND } else { r.sort_order };
    if order == SORT_ASCEND || order == SORT_DESCEND {
        let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
            match r.sort_target {
                TARGET_VERSION => a.version.cmp(&b.version),
                TARGET_CREATE => a.create_revision.cmp(&b.create_revision),
                TARGET_MOD => a.mod_revision.cmp(&b.mod_revision),
                TARGET_VALUE => a.value.cmp(&b.value),
                _ => a.key.cmp(&b.key),
            }
        };
        if order == SORT_ASCEND {
            kvs.sort_by(by);
        } else {
            kvs.sort_by(|a, b| by(b, a));
        }
    }
    let mut more = false;
    if r.limit > 0 && kvs.len() > r.limit as usize {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    let kvs = if r.count_only {
        Vec::new()
    } else {
        kvs.into_iter()
            .map(|mut kv| {
                if r.keys_only {
                    kv.value.clear();
                }
                pb(kv)
            })
            .collect()
    };
    Ok(PbRangeResponse { header: header(found.rev), kvs, more, count: found.count as i64 })
}

fn put_in(txn: &mut WriteTxn<'_>, p: &PbPutRequest) -> Result<PbPutResponse, NodeError> {
    // The stored record is read only when the request needs it; the put itself learns what it
    // replaces from memory.
    let prev = if p.prev_kv || p.ignore_value || p.ignore_lease {
        txn.range(&p.key, &[], 0, 0)?.kvs.into_iter().next()
    } else {
        None
    };
    if (p.ignore_value || p.ignore_lease) && prev.is_none() {
        return Err(NodeError::KeyNotFound);
    }
    let value = match (&prev, p.ignore_value) {
        (Some(prev), true) => prev.value.clone(),
        _ => p.value.clone(),
    };
    let lease = match (&prev, p.ignore_lease) {
        (Some(prev), true) => prev.lease,
        _ => p.lease,
    };
    txn.put(&p.key, &value, lease)?;
    Ok(PbPutResponse { header: None, prev_kv: if p.prev_kv { prev.map(pb) } else { None } })
}

fn delete_in(txn: &mut WriteTxn<'_>, d: &PbDeleteRequest) -> Result<PbDeleteResponse, NodeError> {
    let deleted = txn.delete_range(&d.key, &d.range_end)?;
    Ok(PbDeleteResponse {
        header: None,
        deleted: deleted.len() as i64,
        prev_kvs: if d.prev_kv { deleted.into_iter().map(pb).collect() } else { Vec::new() },
    })
}

/// A Put on its own: one write transaction. `applied_index` is the raft entry it came from.
pub fn apply_put(
    store: &mut Store,
    p: &PbPutRequest,
    leases: &dyn Leases,
    applied_index: Option<u64>,
) -> Result<PbPutResponse, NodeError> {
    if p.lease != 0 && !p.ignore_lease && !leases.exists(p.lease) {
        return Err(NodeError::LeaseNotFound);
    }
    let mut txn = store.write();
    let mut resp = put_in(&mut txn, p)?;
    resp.header = header(txn.commit(applied_index)?);
    Ok(resp)
}

pub fn apply_delete(
    store: &mut Store,
    d: &PbDeleteRequest,
    applied_index: Option<u64>,
) -> Result<PbDeleteResponse, NodeError> {
    let mut txn = store.write();
    let mut resp = delete_in(&mut txn, d)?;
    resp.header = header(txn.commit(applied_index)?);
    Ok(resp)
}

/// Which branch each transaction, nested ones included, takes: decided on the store as it is before
/// the transaction writes anything, as etcd's compareToPath does.
struct Path {
    succeeded: bool,
    nested: Vec<Path>,
}

fn decide(txn: &WriteTxn<'_>, r: &PbTxnRequest) -> Result<Path, NodeError> {
    let mut succeeded = true;
    for c in &r.compare {
        if !compare(txn, c)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded { &r.success } else { &r.failure };
    let nested = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(PbTxnOpRequest::RequestTxn(t)) => Some(decide(txn, t)),
            _ => None,
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Path { succeeded, nested })
}

fn compare(txn: &WriteTxn<'_>, c: &PbCompare) -> Result<bool, NodeError> {
    // etcd treats a read error in a compare as a failed compare.
    let Ok(found) = txn.range(&c.key, &c.range_end, 0, 0) else {
        return Ok(false);
    };
    if found.kvs.is_empty() {
        // No value can equal a missing key's value; other targets compare against zero values.
        if c.target == CMP_VALUE {
            return Ok(false);
        }
        return Ok(compare_kv(c, &KeyValue::default()));
    }
    Ok(found.kvs.iter().all(|kv| compare_kv(c, kv)))
}

fn compare_kv(c: &PbCompare, kv: &KeyValue) -> bool {
    let int = |target: Option<i64>, actual: i64| actual.cmp(&target.unwrap_or(0));
    let ord = match c.target {
        CMP_VALUE => {
            let want: &[u8] = match &c.target_union {
                Some(PbTargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        CMP_CREATE => int(
            match c.target_union {
                Some(PbTargetUnion::CreateRevision(n)) => Some(n),
                _ => None,
            },
            kv.create_revision,
        ),
        CMP_MOD => int(
            match c.target_union {
                Some(PbTargetUnion::ModRevision(n)) => Some(n),
                _ => None,
            },
            kv.mod_revision,
        ),
        CMP_VERSION => int(
            match c.target_union {
                Some(PbTargetUnion::Version(n)) => Some(n),
                _ => None,
            },
            kv.version,
        ),
        CMP_LEASE => int(
            match c.target_union {
                Some(PbTargetUnion::Lease(n)) => Some(n),
                _ => None,
            },
            kv.lease,
        ),
        _ => return true,
    };
    match c.result {
        RESULT_EQUAL => ord == Ordering::Equal,
        RESULT_NOT_EQUAL => ord != Ordering::Equal,
        RESULT_GREATER => ord == Ordering::Greater,
        RESULT_LESS => ord == Ordering::Less,
        _ => true,
    }
}

/// etcd's checkRequests: what would fail is found before anything is written.
fn check(txn: &WriteTxn<'_>, r: &PbTxnRequest, path: &Path, leases: &dyn Leases) -> Result<(), NodeError> {
    let ops = if path.succeeded { &r.success } else { &r.failure };
    let mut nested = path.nested.iter();
    for op in ops {
        match &op.request {
            Some(PbTxnOpRequest::RequestRange(q)) => {
                txn.range(&q.key, &q.range_end, 1, q.revision)?;
            }
            Some(PbTxnOpRequest::RequestPut(p)) => {
                if p.lease != 0 && !p.ignore_lease && !leases.exists(p.lease) {
                    return Err(NodeError::LeaseNotFound);
                }
                if (p.ignore_value || p.ignore_lease) && txn.range(&p.key, &[], 1, 0)?.kvs.is_empty() {
                    return Err(NodeError::KeyNotFound);
                }
            }
            Some(PbTxnOpRequest::RequestTxn(t)) => {
                if let Some(p) = nested.next() {
                    check(txn, t, p, leases)?;
                }
            }
            Some(PbTxnOpRequest::RequestDeleteRange(_)) | None => {}
        }
    }
    Ok(())
}

fn execute(txn: &mut WriteTxn<'_>, r: &PbTxnRequest, path: &Path) -> Result<PbTxnResponse, NodeError> {
    let ops = if path.succeeded { &r.success } else { &r.failure };
    let mut nested = path.nested.iter();
    let mut responses = Vec::with_capacity(ops.len());
    for op in ops {
        let response = match &op.request {
            Some(PbTxnOpRequest::RequestRange(q)) => Some(PbTxnOpResponse::ResponseRange(range_in(txn, q)?)),
            Some(PbTxnOpRequest::RequestPut(p)) => Some(PbTxnOpResponse::ResponsePut(put_in(txn, p)?)),
            Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                Some(PbTxnOpResponse::ResponseDeleteRange(delete_in(txn, d)?))
            }
            Some(PbTxnOpRequest::RequestTxn(t)) => match nested.next() {
                Some(p) => Some(PbTxnOpResponse::ResponseTxn(execute(txn, t, p)?)),
                None => None,
            },
            None => None,
        };
        responses.push(PbResponseOp { response });
    }
    Ok(PbTxnResponse { header: None, succeeded: path.succeeded, responses })
}

/// A Txn: compares decide the branches, checks run, then every write happens at one revision.
pub fn apply_txn(
    store: &mut Store,
    r: &PbTxnRequest,
    leases: &dyn Leases,
    applied_index: Option<u64>,
) -> Result<PbTxnResponse, NodeError> {
    let mut txn = store.write();
    let path = decide(&txn, r)?;
    check(&txn, r, &path, leases)?;
    let mut resp = execute(&mut txn, r, &path)?;
    let rev = txn.commit(applied_index)?;
    stamp(&mut resp, rev);
    Ok(resp)
}

/// Every response in a transaction carries the transaction's revision, as etcd's do.
fn stamp(resp: &mut PbTxnResponse, rev: i64) {
    resp.header = header(rev);
    for op in &mut resp.responses {
        match &mut op.response {
            Some(PbTxnOpResponse::ResponsePut(p)) => p.header = header(rev),
            Some(PbTxnOpResponse::ResponseDeleteRange(d)) => d.header = header(rev),
            Some(PbTxnOpResponse::ResponseRange(q)) => q.header = header(rev),
            Some(PbTxnOpResponse::ResponseTxn(t)) => stamp(t, rev),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_leases() -> impl Leases {
        |_: i64| false
    }

    fn put_req(key: &str, value: &str) -> PbPutRequest {
        PbPutRequest { key: key.into(), value: value.into(), ..PbPutRequest::default() }
    }

    fn range_req(key: &str, end: &str) -> PbRangeRequest {
        PbRangeRequest { key: key.into(), range_end: end.into(), ..PbRangeRequest::default() }
    }

    fn op_put(key: &str, value: &str) -> PbTxnRequestOp {
        PbTxnRequestOp { request: Some(PbTxnOpRequest::RequestPut(put_req(key, value))) }
    }

    fn op_delete(key: &str, end: &str) -> PbTxnRequestOp {
        PbTxnRequestOp {
            request: Some(PbTxnOpRequest::RequestDeleteRange(PbDeleteRequest {
                key: key.into(),
                range_end: end.into(),
                ..PbDeleteRequest::default()
            })),
        }
    }

    fn op_range(key: &str) -> PbTxnRequestOp {
        PbTxnRequestOp { request: Some(PbTxnOpRequest::RequestRange(range_req(key, ""))) }
    }

    fn op_txn(t: PbTxnRequest) -> PbTxnRequestOp {
        PbTxnRequestOp { request: Some(PbTxnOpRequest::RequestTxn(t)) }
    }

    fn cmp_mod(key: &str, result: i32, rev: i64) -> PbCompare {
        PbCompare {
            key: key.into(),
            result,
            target: CMP_MOD,
            target_union: Some(PbTargetUnion::ModRevision(rev)),
            ..PbCompare::default()
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    fn keys(r: &PbRangeResponse) -> Vec<String> {
        r.kvs.iter().map(|kv| String::from_utf8_lossy(&kv.key).into_owned()).collect()
    }

    #[test]
    fn range_limit_more_count_sort_and_filters() {
        let (_d, mut s) = store();
        for (k, v) in [("a", "3"), ("b", "1"), ("c", "2")] {
            apply_put(&mut s, &put_req(k, v), &no_leases(), None).unwrap();
        }
        let r = apply_range(&s, &PbRangeRequest { limit: 2, ..range_req("a", "\0") }).unwrap();
        assert_eq!((keys(&r), r.more, r.count), (vec!["a".into(), "b".into()], true, 3));
        let r =
            apply_range(&s, &PbRangeRequest { sort_target: TARGET_VALUE, ..range_req("a", "\0") }).unwrap();
        assert_eq!(keys(&r), ["b", "c", "a"], "a non-key target sorts ascending by default");
        let r = apply_range(
            &s,
            &PbRangeRequest {
                sort_order: SORT_DESCEND,
                sort_target: TARGET_MOD,
                limit: 1,
                ..range_req("a", "\0")
            },
        )
        .unwrap();
        assert_eq!((keys(&r), r.more), (vec!["c".into()], true));
        let r = apply_range(&s, &PbRangeRequest { min_mod_revision: 3, ..range_req("a", "\0") }).unwrap();
        assert_eq!(keys(&r), ["b", "c"]);
        let r = apply_range(&s, &PbRangeRequest { keys_only: true, ..range_req("a", "") }).unwrap();
        assert!(r.kvs[0].value.is_empty());
        let r = apply_range(&s, &PbRangeRequest { limit: i64::MAX, ..range_req("a", "\0") }).unwrap();
        assert_eq!((r.kvs.len(), r.more), (3, false), "a huge limit is no limit");
        let r = apply_range(&s, &PbRangeRequest { count_only: true, ..range_req("a", "\0") }).unwrap();
        assert_eq!((r.kvs.len(), r.count), (0, 3));
        assert_eq!(r.header.map(|h| h.revision), Some(4));
    }

    #[test]
    fn put_options_as_etcd() {
        let (_d, mut s) = store();
        let leases = |id: i64| id == 7;
        assert_eq!(
            apply_put(&mut s, &PbPutRequest { lease: 9, ..put_req("k", "v") }, &leases, None),
            Err(NodeError::LeaseNotFound)
        );
        apply_put(&mut s, &PbPutRequest { lease: 7, ..put_req("k", "v1") }, &leases, None).unwrap();
        let r = apply_put(
            &mut s,
            &PbPutRequest { prev_kv: true, ignore_lease: true, ..put_req("k", "v2") },
            &leases,
            None,
        )
        .unwrap();
        assert_eq!(r.prev_kv.map(|kv| kv.value), Some(b"v1".to_vec()));
        let now = apply_range(&s, &range_req("k", "")).unwrap().kvs.remove(0);
        assert_eq!((now.value, now.lease, now.version), (b"v2".to_vec(), 7, 2));
        apply_put(&mut s, &PbPutRequest { ignore_value: true, ..put_req("k", "") }, &leases, None).unwrap();
        assert_eq!(apply_range(&s, &range_req("k", "")).unwrap().kvs[0].value, b"v2");
        assert_eq!(
            apply_put(&mut s, &PbPutRequest { ignore_value: true, ..put_req("missing", "") }, &leases, None),
            Err(NodeError::KeyNotFound)
        );
        assert_eq!(
            validate_put(&PbPutRequest { ignore_value: true, ..put_req("k", "x") }),
            Err(NodeError::ValueProvided)
        );
        assert_eq!(
            validate_put(&PbPutRequest { ignore_lease: true, lease: 1, ..put_req("k", "") }),
            Err(NodeError::LeaseProvided)
        );
        assert_eq!(validate_put(&put_req("", "v")), Err(NodeError::EmptyKey));
    }

    #[test]
    fn delete_with_prev_kvs() {
        let (_d, mut s) = store();
        for k in ["p/1", "p/2", "q"] {
            apply_put(&mut s, &put_req(k, "v"), &no_leases(), None).unwrap();
        }
        let r = apply_delete(
            &mut s,
            &PbDeleteRequest { key: b"p/".to_vec(), range_end: b"p0".to_vec(), prev_kv: true },
            None,
        )
        .unwrap();
        assert_eq!((r.deleted, r.prev_kvs.len()), (2, 2));
        assert_eq!(r.header.map(|h| h.revision), Some(5));
    }

    #[test]
    fn a_compare_and_swap_on_mod_revision() {
        let (_d, mut s) = store();
        let rev =
            apply_put(&mut s, &put_req("k", "v1"), &no_leases(), None).unwrap().header.unwrap().revision;
        let cas = |rev: i64| PbTxnRequest {
            compare: vec![cmp_mod("k", RESULT_EQUAL, rev)],
            success: vec![op_put("k", "v2")],
            failure: vec![op_range("k")],
        };
        let r = apply_txn(&mut s, &cas(rev), &no_leases(), None).unwrap();
        assert!(r.succeeded);
        assert_eq!(r.header.map(|h| h.revision), Some(3));
        let r = apply_txn(&mut s, &cas(rev), &no_leases(), None).unwrap();
        assert!(!r.succeeded, "the key moved on");
        let Some(PbTxnOpResponse::ResponseRange(got)) = &r.responses[0].response else {
            panic!("range response")
        };
        assert_eq!(got.kvs[0].value, b"v2");
        assert_eq!(r.header.map(|h| h.revision), Some(3), "a read-only branch adds no revision");
    }

    #[test]
    fn compares_on_missing_keys_and_every_target() {
        let (_d, mut s) = store();
        let t = |c: PbCompare| PbTxnRequest { compare: vec![c], ..PbTxnRequest::default() };
        let value = |result, v: &str| PbCompare {
            key: b"nope".to_vec(),
            result,
            target: CMP_VALUE,
            target_union: Some(PbTargetUnion::Value(v.into())),
            ..PbCompare::default()
        };
        assert!(!apply_txn(&mut s, &t(value(RESULT_EQUAL, "")), &no_leases(), None).unwrap().succeeded);
        assert!(!apply_txn(&mut s, &t(value(RESULT_NOT_EQUAL, "x")), &no_leases(), None).unwrap().succeeded);
        let create0 = PbCompare {
            key: b"nope".to_vec(),
            result: RESULT_EQUAL,
            target: CMP_CREATE,
            target_union: Some(PbTargetUnion::CreateRevision(0)),
            ..PbCompare::default()
        };
        assert!(apply_txn(&mut s, &t(create0), &no_leases(), None).unwrap().succeeded, "create == 0: absent");
        apply_put(&mut s, &put_req("k", "b"), &no_leases(), None).unwrap();
        let on_k = |target, result, tu| PbCompare {
            key: b"k".to_vec(),
            result,
            target,
            target_union: Some(tu),
            ..PbCompare::default()
        };
        for (c, want) in [
            (on_k(CMP_VALUE, RESULT_GREATER, PbTargetUnion::Value(b"a".to_vec())), true),
            (on_k(CMP_VALUE, RESULT_LESS, PbTargetUnion::Value(b"a".to_vec())), false),
            (on_k(CMP_VERSION, RESULT_EQUAL, PbTargetUnion::Version(1)), true),
            (on_k(CMP_CREATE, RESULT_LESS, PbTargetUnion::CreateRevision(3)), true),
            (on_k(CMP_LEASE, RESULT_EQUAL, PbTargetUnion::Lease(0)), true),
        ] {
            assert_eq!(
                apply_txn(&mut s, &t(c.clone()), &no_leases(), None).unwrap().succeeded,
                want,
                "{c:?}"
            );
        }
        // A compare over a range holds only if it holds for every key in it.
        apply_put(&mut s, &put_req("k2", "z"), &no_leases(), None).unwrap();
        let all = PbCompare {
            range_end: b"l".to_vec(),
            ..on_k(CMP_VALUE, RESULT_EQUAL, PbTargetUnion::Value(b"b".to_vec()))
        };
        assert!(!apply_txn(&mut s, &t(all), &no_leases(), None).unwrap().succeeded);
    }

    #[test]
    fn nested_transactions_decide_on_the_store_before_the_writes() {
        let (_d, mut s) = store();
        // Outer: put a; nested: if a does not exist yet (decided before the put), put b.
        let nested = PbTxnRequest {
            compare: vec![PbCompare {
                key: b"a".to_vec(),
                result: RESULT_EQUAL,
                target: CMP_VERSION,
                target_union: Some(PbTargetUnion::Version(0)),
                ..PbCompare::default()
            }],
            success: vec![op_put("b", "1")],
            failure: vec![op_put("c", "1")],
        };
        let r = apply_txn(
            &mut s,
            &PbTxnRequest { success: vec![op_put("a", "1"), op_txn(nested)], ..PbTxnRequest::default() },
            &no_leases(),
            Some(5),
        )
        .unwrap();
        let Some(PbTxnOpResponse::ResponseTxn(inner)) = &r.responses[1].response else { panic!("nested") };
        assert!(inner.succeeded);
        assert_eq!(inner.header.as_ref().map(|h| h.revision), Some(2));
        assert_eq!(
            apply_range(&s, &range_req("b", "")).unwrap().kvs[0].mod_revision,
            2,
            "one revision for all"
        );
        assert_eq!(s.consistent_index(), 5);
    }

    #[test]
    fn a_failing_check_writes_nothing() {
        let (_d, mut s) = store();
        let t = PbTxnRequest {
            success: vec![
                op_put("a", "1"),
                op_txn(PbTxnRequest {
                    success: vec![PbTxnRequestOp {
                        request: Some(PbTxnOpRequest::RequestPut(PbPutRequest {
                            lease: 42,
                            ..put_req("b", "1")
                        })),
                    }],
                    ..PbTxnRequest::default()
                }),
            ],
            ..PbTxnRequest::default()
        };
        assert_eq!(apply_txn(&mut s, &t, &no_leases(), None), Err(NodeError::LeaseNotFound));
        assert_eq!(s.current_revision(), 1);
        assert_eq!(apply_range(&s, &range_req("a", "")).unwrap().count, 0);
    }

    #[test]
    fn duplicate_keys_and_too_many_ops_are_refused_as_etcd_refuses_them() {
        let dup =
            PbTxnRequest { success: vec![op_put("k", "1"), op_put("k", "2")], ..PbTxnRequest::default() };
        assert_eq!(validate_txn(&dup, 128), Err(NodeError::DuplicateKey));
        let put_in_deleted =
            PbTxnRequest { success: vec![op_delete("a", "c"), op_put("b", "1")], ..PbTxnRequest::default() };
        assert_eq!(validate_txn(&put_in_deleted, 128), Err(NodeError::DuplicateKey));
        let two_deletes = PbTxnRequest {
            success: vec![op_delete("a", "c"), op_delete("b", "")],
            ..PbTxnRequest::default()
        };
        assert_eq!(validate_txn(&two_deletes, 128), Ok(()), "deletes never conflict");
        let then_else = PbTxnRequest {
            success: vec![op_txn(PbTxnRequest {
                success: vec![op_put("k", "1")],
                failure: vec![op_put("k", "2")],
                ..PbTxnRequest::default()
            })],
            ..PbTxnRequest::default()
        };
        assert_eq!(validate_txn(&then_else, 128), Ok(()), "then and else never both run");
        let nested_dup = PbTxnRequest {
            success: vec![
                op_put("k", "1"),
                op_txn(PbTxnRequest { success: vec![op_put("k", "2")], ..PbTxnRequest::default() }),
            ],
            ..PbTxnRequest::default()
        };
        assert_eq!(validate_txn(&nested_dup, 128), Err(NodeError::DuplicateKey));
        let same_key_in_branches = PbTxnRequest {
            success: vec![op_put("k", "1")],
            failure: vec![op_put("k", "2")],
            ..PbTxnRequest::default()
        };
        assert_eq!(validate_txn(&same_key_in_branches, 128), Ok(()));
        let many = PbTxnRequest {
            success: (0..4).map(|i| op_put(&format!("k{i}"), "v")).collect(),
            ..PbTxnRequest::default()
        };
        assert_eq!(validate_txn(&many, 3), Err(NodeError::TooManyOps));
        assert_eq!(validate_txn(&many, 4), Ok(()));
    }

    #[test]
    fn reads_at_compacted_or_future_revisions_fail_with_etcds_errors() {
        let (_d, mut s) = store();
        for v in ["1", "2", "3"] {
            apply_put(&mut s, &put_req("k", v), &no_leases(), None).unwrap();
        }
        s.compact(3).unwrap();
        assert_eq!(
            apply_range(&s, &PbRangeRequest { revision: 2, ..range_req("k", "") }),
            Err(NodeError::Compacted)
        );
        assert_eq!(
            apply_range(&s, &PbRangeRequest { revision: 9, ..range_req("k", "") }),
            Err(NodeError::FutureRev)
        );
        let t = PbTxnRequest {
            success: vec![
                op_put("x", "1"),
                PbTxnRequestOp {
                    request: Some(PbTxnOpRequest::RequestRange(PbRangeRequest {
                        revision: 2,
                        ..range_req("k", "")
                    })),
                },
            ],
            ..PbTxnRequest::default()
        };
        assert_eq!(apply_txn(&mut s, &t, &no_leases(), None), Err(NodeError::Compacted));
        assert_eq!(s.current_revision(), 4, "the put before the failing range was not written");
    }
}
