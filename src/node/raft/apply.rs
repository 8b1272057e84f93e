//! The state machine: a committed write applied to the store, after the same checks etcd makes when
//! it applies one (the NOSPACE alarm, the caller's permissions again, the membership again).

use etcd_client::proto::{
    PbAlarmMember, PbAlarmResponse, PbCompactionResponse, PbLeaseGrantResponse, PbLeaseRevokeResponse,
    PbTxnOpRequest, PbTxnRequest,
};

use crate::node::auth::{Caller, Op, Tokens};
use crate::node::error::NodeError;
use crate::node::lease::{Lessor, MAX_LEASE_TTL};
use crate::node::mvcc::apply::{self, header};
use crate::node::mvcc::store::{RaftMember, Store};
use crate::node::raft::membership::validate_member_change;
use crate::node::raft::write::{
    Write, WriteResponse, ALARM_ACTIVATE, ALARM_DEACTIVATE, ALARM_GET, ALARM_NONE, ALARM_NOSPACE,
};

/// Applies one committed write. Every outcome, refusals included, records `index` in the store, so
/// a replay after a crash skips the entry.
pub(super) fn apply_write(
    store: &mut Store,
    write: &Write,
    index: u64,
    lessor: &Lessor,
    tokens: &Tokens,
) -> Result<WriteResponse, NodeError> {
    let result = apply_write_once(store, write, index, lessor, tokens);
    if matches!(&result, Err(e) if !matches!(e, NodeError::Storage(_))) && store.consistent_index() < index {
        // A refusal found before anything was written (an unknown lease, a compacted revision in a
        // txn, ...) still consumes its entry.
        store.write().commit(Some(index))?;
    }
    result
}

fn apply_write_once(
    store: &mut Store,
    write: &Write,
    index: u64,
    lessor: &Lessor,
    tokens: &Tokens,
) -> Result<WriteResponse, NodeError> {
    let at = Some(index);
    let refuse = |store: &mut Store, e: NodeError| -> Result<WriteResponse, NodeError> {
        store.write().commit(at)?;
        Err(e)
    };
    if write.adds_data() && store.alarms().iter().any(|(_, a)| *a == ALARM_NOSPACE) {
        return refuse(store, NodeError::NoSpace);
    }
    match write {
        Write::As(caller, inner) => {
            if let Err(e) = check_permissions(store, caller, inner) {
                return refuse(store, e);
            }
            apply_write_once(store, inner, index, lessor, tokens)
        }
        Write::Auth(w) => {
            let mut auth = store.auth().clone();
            match auth.apply(w, index, tokens) {
                Ok(outcome) => {
                    let changed = auth != *store.auth();
                    let mut txn = store.write();
                    if changed {
                        txn.set_auth(auth);
                    }
                    let revision = txn.commit(at)?;
                    Ok(WriteResponse::Auth { outcome, revision })
                }
                Err(e) => refuse(store, e),
            }
        }
        Write::Put(r) => {
            let known = store.leases().contains_key(&r.lease);
            apply::apply_put(store, r, &|_: i64| known, at).map(WriteResponse::Put)
        }
        Write::Delete(r) => apply::apply_delete(store, r, at).map(WriteResponse::Delete),
        Write::Txn(r) => {
            let known: std::collections::BTreeSet<i64> = store.leases().keys().copied().collect();
            apply::apply_txn(store, r, &|id: i64| known.contains(&id), at).map(WriteResponse::Txn)
        }
        Write::LeaseGrant(r) => {
            if store.leases().contains_key(&r.id) {
                return refuse(store, NodeError::LeaseExists);
            }
            if r.ttl > MAX_LEASE_TTL {
                return refuse(store, NodeError::LeaseTtlTooLarge);
            }
            let ttl = lessor.effective_ttl(r.ttl);
            let mut txn = store.write();
            txn.grant(r.id, ttl);
            let revision = txn.commit(at)?;
            lessor.start(r.id, ttl);
            Ok(WriteResponse::LeaseGrant(PbLeaseGrantResponse {
                header: header(revision),
                id: r.id,
                ttl,
                error: String::new(),
            }))
        }
        Write::LeaseRevoke(r) => {
            let mut txn = store.write();
            let found = txn.revoke(r.id)?;
            let revision = txn.commit(at)?;
            lessor.forget(r.id);
            if !found {
                return Err(NodeError::LeaseNotFound);
            }
            Ok(WriteResponse::LeaseRevoke(PbLeaseRevokeResponse { header: header(revision) }))
        }
        Write::Alarm(r) => {
            let member = |m: u64, alarm: i32| PbAlarmMember { member_id: m, alarm };
            let mut alarms = Vec::new();
            let mut txn = store.write();
            match r.action {
                ALARM_GET => {
                    for (m, a) in txn.alarms() {
                        if r.alarm == ALARM_NONE || r.alarm == a {
                            alarms.push(member(m, a));
                        }
                    }
                }
                ALARM_ACTIVATE if r.alarm != ALARM_NONE => {
                    txn.set_alarm(r.member_id, r.alarm, true);
                    alarms.push(member(r.member_id, r.alarm));
                }
                ALARM_DEACTIVATE if txn.alarms().contains(&(r.member_id, r.alarm)) => {
                    txn.set_alarm(r.member_id, r.alarm, false);
                    alarms.push(member(r.member_id, r.alarm));
                }
                _ => {}
            }
            txn.commit(at)?;
            Ok(WriteResponse::Alarm(PbAlarmResponse { header: None, alarms }))
        }
        Write::Publish(m) if !store.members().is_empty() && !store.members().contains_key(&m.id) => {
            // etcd skips the attributes of a member that is gone.
            refuse(store, NodeError::MemberNotFound)
        }
        Write::UpdateMember(m) => {
            if let Err(e) = validate_member_change(store, write) {
                return refuse(store, e);
            }
            let learner = store.members().get(&m.id).is_some_and(|m| m.is_learner);
            let mut txn = store.write();
            txn.set_member(m.id, RaftMember { peer_urls: m.peer_ur_ls.clone(), is_learner: learner });
            txn.commit(at)?;
            Ok(WriteResponse::MembershipChanged)
        }
        Write::AddMember(_) | Write::RemoveMember(_) | Write::PromoteMember(_) => {
            // Only ever proposed as configuration changes.
            refuse(store, NodeError::Storage("a membership change in an ordinary entry".into()))
        }
        Write::Publish(m) => {
            let mut txn = store.write();
            txn.set_attributes(m.id, &m.name, &m.client_ur_ls);
            txn.commit(at)?;
            Ok(WriteResponse::Published)
        }
        Write::V2(r) => {
            let mut txn = store.write();
            // The proposer's clock, so that every member keeps the same answer in its history.
            let answer = txn.apply_v2(r, r.time);
            txn.commit(at)?;
            Ok(WriteResponse::V2(answer))
        }
        Write::Compact(r) => {
            // A failed compaction still consumes its entry: record the index.
            let result = store.compact(r.revision).map_err(NodeError::from);
            store.write().commit(at)?;
            result?;
            Ok(WriteResponse::Compact(PbCompactionResponse { header: header(store.current_revision()) }))
        }
    }
}

/// etcd's checks when it applies a client's write (its authApplierV3): the keys a put, a delete
/// or a transaction touches (nested transactions included), the keys attached to a lease a put
/// uses or a revoke ends, and the root role for auth changes.
fn check_permissions(store: &Store, caller: &Caller, write: &Write) -> Result<(), NodeError> {
    let auth = store.auth();
    if !auth.enabled {
        return Ok(());
    }
    let who = Some(caller);
    let lease_keys = |lease: i64| -> Result<(), NodeError> {
        if auth.admin_permitted(who).is_ok() {
            return Ok(());
        }
        for key in store.leases().get(&lease).map(|l| &l.keys).into_iter().flatten() {
            auth.permitted(who, key, &[], Op::Write)?;
        }
        Ok(())
    };
    fn txn(
        auth: &crate::node::auth::AuthState,
        who: Option<&Caller>,
        t: &PbTxnRequest,
    ) -> Result<(), NodeError> {
        for c in &t.compare {
            auth.permitted(who, &c.key, &c.range_end, Op::Read)?;
        }
        for op in t.success.iter().chain(&t.failure) {
            match &op.request {
                Some(PbTxnOpRequest::RequestRange(r)) => {
                    auth.permitted(who, &r.key, &r.range_end, Op::Read)?
                }
                Some(PbTxnOpRequest::RequestPut(p)) => auth.permitted(who, &p.key, &[], Op::Write)?,
                Some(PbTxnOpRequest::RequestDeleteRange(d)) => {
                    if d.prev_kv {
                        auth.permitted(who, &d.key, &d.range_end, Op::Read)?;
                    }
                    auth.permitted(who, &d.key, &d.range_end, Op::Write)?;
                }
                Some(PbTxnOpRequest::RequestTxn(inner)) => txn(auth, who, inner)?,
                None => {}
            }
        }
        Ok(())
    }
    match write {
        Write::Put(p) => {
            auth.permitted(who, &p.key, &[], Op::Write)?;
            lease_keys(p.lease)?;
            if p.prev_kv {
                auth.permitted(who, &p.key, &[], Op::Read)?;
            }
            Ok(())
        }
        Write::Delete(d) => {
            auth.permitted(who, &d.key, &d.range_end, Op::Write)?;
            if d.prev_kv {
                auth.permitted(who, &d.key, &d.range_end, Op::Read)?;
            }
            Ok(())
        }
        Write::Txn(t) => txn(auth, who, t),
        Write::LeaseRevoke(r) => lease_keys(r.id),
        Write::Auth(w) if w.needs_admin() => auth.admin_permitted(who),
        _ => Ok(()),
    }
}
