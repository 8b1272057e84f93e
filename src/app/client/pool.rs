//! The connection pool and what it runs: one client per endpoint, kept and reused, and each effect
//! turned into requests with their own timeouts, tried on the endpoints as the effect needs (the
//! first answer for reads, one endpoint at a time for writes).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::sync::OnceCell;

use crate::app::cluster::{Alarm, MemberInfo, MemberList, StatusInfo};
use crate::app::connection::ConnectConfig;
use crate::app::edit::{self, LeaseChoice, Write, WriteOutcome};
use crate::app::effect::Effect;
use crate::app::keys::{self, KeyHistory, KeyPage, KeyRequest, Row, ValueInfo, ValueRead};
use crate::app::members::{MemberOp, MemberOutcome};
use crate::app::msg::Msg;
use crate::app::value_format::display_bytes;
use crate::app::watch::{Ack, TailStatus, WatchReport};

use crate::app::client::connect::connect_with;
use crate::app::client::errors::{deadline_exceeded, error_text, send, with_timeout, WriteError};

/// etcd's answer to a request whose token predates a change to users or roles.
pub(crate) const AUTH_OLD_REVISION: &str = "revision of auth store is old";

/// An endpoint URL, and whether the client requires a leader (watch tails' do).
type ClientKey = (String, bool);

/// One etcd-client per endpoint URL, created on first use and kept, so each refresh reuses the
/// connection (and its HTTP/2 session) instead of dialing again.
pub(super) struct Pool {
    pub(super) config: ConnectConfig,
    pub(super) clients: Mutex<HashMap<ClientKey, Arc<OnceCell<Client>>>>,
    /// The running watch tails' tasks, by tail id.
    pub(super) tails: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
    /// The running `:space` scans' tasks, by request id.
    pub(super) scans: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
    /// What decoding the last value read for the pane produced (its object is shared, not copied).
    pub(super) last_value: Mutex<Option<crate::app::value_pane::Decoding>>,
}

impl Pool {
    pub(super) async fn execute(&self, effect: Effect) -> Msg {
        match effect {
            Effect::ListMembers { refresh } => {
                Msg::Members { refresh, result: self.first_answer(|ep| self.member_list(ep)).await }
            }
            Effect::FetchStatus { refresh, member_id, endpoint } => {
                let result = self.status(&endpoint).await;
                Msg::Status { refresh, member_id, endpoint, result }
            }
            Effect::Keys(KeyRequest::List { request, prefix, start, revision, tree, values }) => {
                let result = self
                    .first_answer(|ep| self.list_keys(ep, &prefix, &start, revision, tree.as_deref(), values))
                    .await;
                Msg::KeyPage { request, result }
            }
            Effect::Keys(KeyRequest::History { request, key, mod_revision }) => {
                let result = self.first_answer(|ep| self.history(ep, &key, mod_revision)).await;
                Msg::History { request, result }
            }
            Effect::Write { request, write } => {
                // A write goes to one endpoint at a time: sent to several at once, a put could be
                // made twice.
                Msg::Written { request, result: self.one_answer(|ep| self.write(ep, &write)).await }
            }
            Effect::ListBackups { request, dir } => Msg::Backups {
                request,
                result: tokio::task::spawn_blocking(move || crate::app::snapshot::list_backups(&dir))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string())),
            },
            Effect::Mirrors { request } => {
                Msg::Mirrors { request, result: self.first_answer(|ep| self.mirrors(ep)).await }
            }
            Effect::CountPrefix { request, prefix } => Msg::PrefixCount {
                request,
                result: self.first_answer(|ep| self.count_now(ep, &prefix)).await,
            },
            // Started by `Worker::run` itself; these never get here.
            Effect::Watch { tail, .. } | Effect::StopWatch { tail } => Msg::Watch {
                tail,
                report: WatchReport::Status(TailStatus::Failed(
                    "internal error: watch effect misrouted".into(),
                )),
                ack: Ack::default(),
            },
            Effect::Editor { key, .. } | Effect::Copy { bytes: key, .. } => Msg::Value {
                request: 0,
                result: Err(format!("{} is run by the terminal", display_bytes(&key))),
            },
            Effect::SaveSnapshot { request, .. } => Msg::SnapshotSaved {
                request,
                result: Err("internal error: snapshot effect misrouted".into()),
            },
            Effect::Space { request, .. } | Effect::StopSpace { request } => {
                Msg::Space { request, result: Err("internal error: space effect misrouted".into()) }
            }
            Effect::Member { request, op } => {
                // A change goes to one endpoint at a time (never made twice); a leadership move to
                // the leader itself, as etcdctl needs.
                let result = match &op {
                    MemberOp::MoveLeader { leader: endpoint, .. } | MemberOp::Defragment { endpoint, .. } => {
                        self.member_op(endpoint, &op).await.map_err(|e| format!("{endpoint}: {}", e.text()))
                    }
                    _ => self.one_answer(|ep| self.member_op(ep, &op)).await,
                };
                Msg::Member { request, result }
            }
            // Run by the runtime that owns the demo's processes; never sent here.
            Effect::MemberProcess { name, .. } => {
                Msg::Process { result: Err(format!("{name}: this console runs no member processes")) }
            }
            Effect::RestoreLocal { request, .. } => {
                Msg::RestoreDirs { request, result: Err("this console runs no member processes".into()) }
            }
            Effect::ReplaceProcess { request, .. } => {
                Msg::ReplaceProcess { request, result: Err("this console runs no member processes".into()) }
            }
            Effect::SwitchContext { name } => {
                Msg::Process { result: Err(format!("context {name}: switching is the console's to do")) }
            }
            Effect::FinishRestore { request, .. } => {
                Msg::Restored { request, result: Err("this console runs no member processes".into()) }
            }
            Effect::CheckSnapshotFile { request, path } => {
                // Reads the whole file: off the async workers.
                let result = tokio::task::spawn_blocking(move || crate::app::snapshot::check_file(&path))
                    .await
                    .unwrap_or_else(|e| Err(format!("internal error: {e}")));
                Msg::SnapshotFile { request, result }
            }
            Effect::Keys(KeyRequest::Count { request, prefix, revision }) => {
                let result = self.first_answer(|ep| self.count_keys(ep, &prefix, revision)).await;
                Msg::KeyCount { request, result }
            }
            Effect::Keys(KeyRequest::Value { request, key }) => {
                let result = self.first_answer(|ep| self.value(ep, &key)).await;
                Msg::Value { request, result }
            }
            Effect::CheckHealth { refresh, member_id, endpoint, serializable } => {
                let result = self.health(&endpoint, serializable).await;
                Msg::Health { refresh, member_id, endpoint, result }
            }
            Effect::LoadAuth { request, user } => {
                let result = self.first_answer(|ep| self.auth_listing(ep, user.as_deref())).await;
                Msg::Auth { request, result }
            }
        }
    }

    /// Tries the endpoints one after another until one answers; for writes. Only a failure to reach
    /// an endpoint moves on: an answer from etcd (even an error) ends it, so a write is never made
    /// twice.
    async fn one_answer<'a, T, F, Fut>(&'a self, call: F) -> Result<T, String>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<T, WriteError>> + 'a,
    {
        let mut last = String::from("no endpoints");
        for ep in &self.config.endpoints {
            let mut answer = call(ep.as_str()).await;
            // etcd refused the request before it changed anything: sign in again and retry once,
            // as etcd's own clients do.
            if matches!(&answer, Err(WriteError::Answered(e)) if e.contains(AUTH_OLD_REVISION))
                && self.sign_in_again(ep).await
            {
                answer = call(ep.as_str()).await;
            }
            match answer {
                Ok(value) => return Ok(value),
                Err(e) if e.may_try_another_endpoint() => last = format!("{ep}: {}", e.text()),
                Err(e) => return Err(format!("{ep}: {}", e.text())),
            }
        }
        Err(last)
    }

    /// A new token for the pooled clients of `ep` (after etcd's "revision of auth store is old":
    /// a JWT carries the auth revision it was signed at, so any auth change outdates it for
    /// writes). Whether a token was fetched.
    async fn sign_in_again(&self, ep: &str) -> bool {
        if self.config.user().is_none() {
            return false;
        }
        let Ok(client) = self.client(ep).await else { return false };
        let refreshed = tokio::time::timeout(self.config.command_timeout, client.refresh_token()).await;
        matches!(refreshed, Ok(Ok(())))
    }

    /// Asks every configured endpoint at once and takes the first success; if all fail, the error
    /// of the last to fail is reported, with its endpoint.
    async fn first_answer<'a, T, F, Fut>(&'a self, call: F) -> Result<T, String>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<T, String>> + 'a,
    {
        let ask = || {
            futures::future::select_ok(self.config.endpoints.iter().map(|ep| {
                let fut = call(ep.as_str());
                Box::pin(async move { fut.await.map_err(|e| format!("{ep}: {e}")) })
            }))
        };
        let mut outcome = ask().await;
        if matches!(&outcome, Err(e) if e.contains(AUTH_OLD_REVISION)) {
            // Reads refused for an outdated token: sign in again everywhere, then ask once more.
            let mut any = false;
            for ep in &self.config.endpoints {
                any |= self.sign_in_again(ep).await;
            }
            if any {
                outcome = ask().await;
            }
        }
        match outcome {
            Ok((value, _)) => Ok(value),
            Err(last) => {
                if self.config.endpoints.len() == 1 {
                    Err(last)
                } else {
                    Err(format!("no endpoint answered (last error: {last})"))
                }
            }
        }
    }

    pub(super) async fn client(&self, endpoint: &str) -> Result<Client, String> {
        self.pooled(endpoint, false).await
    }

    /// The client watch tails use: it requires a leader.
    pub(super) async fn watch_client(&self, endpoint: &str) -> Result<Client, String> {
        self.pooled(endpoint, true).await
    }

    async fn pooled(&self, endpoint: &str, require_leader: bool) -> Result<Client, String> {
        let cell = {
            let mut clients = self.clients.lock().map_err(|_| "connection pool poisoned".to_string())?;
            clients.entry((endpoint.to_string(), require_leader)).or_default().clone()
        };
        let client = cell.get_or_try_init(|| connect_with(&self.config, endpoint, require_leader)).await?;
        Ok(client.clone())
    }

    async fn member_list(&self, endpoint: &str) -> Result<MemberList, String> {
        let mut client = self.client(endpoint).await?;
        let resp = with_timeout(self.config.command_timeout, client.member_list()).await?;
        let members = resp.members().iter().map(member_info).collect();
        Ok(MemberList { cluster_id: resp.header().map_or(0, |h| h.cluster_id()), members })
    }

    async fn status(&self, endpoint: &str) -> Result<StatusInfo, String> {
        let mut client = self.client(endpoint).await?;
        let started = Instant::now();
        let resp = with_timeout(self.config.command_timeout, client.status()).await?;
        let rtt = started.elapsed();
        let header = resp.header();
        let (alarms, errors): (Vec<&String>, Vec<&String>) =
            resp.errors().iter().partition(|e| Alarm::parse_status_error(e).is_some());
        Ok(StatusInfo {
            member_id: header.map_or(0, |h| h.member_id()),
            cluster_id: header.map_or(0, |h| h.cluster_id()),
            revision: header.map_or(0, |h| h.revision()),
            version: resp.version().to_string(),
            db_size: resp.db_size(),
            db_size_in_use: resp.raft_used_db_size(),
            leader: resp.leader(),
            raft_term: resp.raft_term(),
            raft_index: resp.raft_index(),
            raft_applied_index: resp.raft_applied_index(),
            errors: errors.into_iter().cloned().collect(),
            alarms: alarms.iter().filter_map(|e| Alarm::parse_status_error(e)).collect(),
            is_learner: resp.is_learner(),
            rtt,
        })
    }

    /// `etcdctl endpoint health`: a linearizable Get of "health"; permission denied still proves the
    /// request went through consensus, so it counts as healthy. Learners get a serializable Get.
    /// One page (PAGE keys, fewer at the end) of the listing from `start`, keys-only and
    /// serializable, at `revision` (0: newest, then pinned for the page's later reads). It is read
    /// from ever larger subtrees around the cursor (see `keys::subtree_end`), so on etcd 3.4 a page
    /// costs about what it returns, not what follows it. With `values` (the Kubernetes view, flat
    /// only) the values come too, and each row keeps what its value holds, not the value.
    async fn list_keys(
        &self,
        endpoint: &str,
        prefix: &[u8],
        start: &[u8],
        revision: i64,
        tree: Option<&[u8]>,
        values: bool,
    ) -> Result<KeyPage, String> {
        let values = values && tree.is_none();
        let mut client = self.client(endpoint).await?;
        let deadline = Instant::now() + self.config.command_timeout;
        let mut rows: Vec<Row> = Vec::new();
        let mut cursor = start.to_vec();
        let mut depth = cursor.len();
        let mut revision = revision;
        // Keys can be up to 1.5 MiB: a reply over gRPC's 4 MiB message limit is asked for again
        // with half the limit, down to one key.
        let mut limit = keys::PAGE;
        // In a tree, keys that collapse into directories are read only to be skipped: after a read
        // that was mostly that, the next reads ask for a few keys, not a page.
        let mut probe = keys::PAGE;
        loop {
            let (bound, last) = keys::subtree_end(prefix, &cursor, depth);
            let mut options = GetOptions::new().with_range(bound.clone());
            if !values {
                options = options.with_keys_only();
            }
            let options = options
                .with_serializable()
                .with_limit(limit.min(probe).min(keys::PAGE - rows.len() as i64))
                .with_revision(revision);
            let left = deadline.saturating_duration_since(Instant::now());
            let resp = match tokio::time::timeout(left, client.get(cursor.clone(), Some(options))).await {
                Err(_) => return Err(deadline_exceeded(self.config.command_timeout)),
                Ok(Err(etcd_client::Error::GRpcStatus(s)))
                    if limit > 1
                        && (s.message().contains("too large") || s.message().contains("larger than"))
                        && matches!(s.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted) =>
                {
                    limit /= 2;
                    continue;
                }
                Ok(Err(e)) => return Err(error_text(&e)),
                Ok(Ok(resp)) => resp,
            };
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let before = rows.len();
            for kv in resp.kvs() {
                let row = match tree {
                    Some(sep) => keys::tree_row(prefix, sep, kv.key()),
                    None if values => Row {
                        kube: Some(Box::new(keys::KubeRow::read(kv.key(), kv.value(), kv.mod_revision()))),
                        ..Row::key(kv.key())
                    },
                    None => Row::key(kv.key()),
                };
                // Keys inside the directory just added add nothing.
                if rows.last().is_some_and(|r| r.dir && row.dir && r.key == row.key) {
                    continue;
                }
                rows.push(row);
            }
            let read = resp.kvs().len();
            probe = if read >= 16 && (rows.len() - before) * 4 < read { 16 } else { keys::PAGE };
            if rows.len() as i64 >= keys::PAGE {
                return Ok(KeyPage { rows, more: true, revision });
            }
            if resp.more() {
                // Cut by the limit inside a directory: go on after it (or after the last key).
                if let Some(last_row) = rows.last() {
                    cursor = last_row.next_start();
                    depth = depth.min(cursor.len());
                    continue;
                }
            }
            if last {
                return Ok(KeyPage { rows, more: false, revision });
            }
            // Everything below the bound is read (a directory may reach past it: skip to its end).
            cursor = match rows.last().filter(|r| r.dir) {
                Some(dir) if keys::prefix_end(&dir.key) > bound => keys::prefix_end(&dir.key),
                _ => bound,
            };
            depth = depth.saturating_sub(1).min(cursor.len());
        }
    }

    /// The versions of `key` before `mod_revision`, newest first: each read at the revision just
    /// before the version after it, until the key's creation, a revision compacted away, or 100
    /// versions.
    async fn history(&self, endpoint: &str, key: &[u8], mod_revision: i64) -> Result<KeyHistory, String> {
        const MAX: usize = 100;
        let mut client = self.client(endpoint).await?;
        let deadline = Instant::now() + self.config.command_timeout;
        let mut versions: Vec<ValueInfo> = Vec::new();
        let mut before = mod_revision;
        loop {
            if versions.len() == MAX {
                return Ok(KeyHistory { versions, end: format!("the {MAX} versions before it shown") });
            }
            if before <= 1 {
                return Ok(KeyHistory { versions, end: "created at revision 1".into() });
            }
            let options = GetOptions::new().with_revision(before - 1).with_serializable();
            let left = deadline.saturating_duration_since(Instant::now());
            let resp = match tokio::time::timeout(left, client.get(key, Some(options))).await {
                Err(_) => return Err(deadline_exceeded(self.config.command_timeout)),
                Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.message().contains("compacted") => {
                    let end = format!("older versions are compacted ({})", s.message());
                    return Ok(KeyHistory { versions, end });
                }
                Ok(Err(e)) => return Err(error_text(&e)),
                Ok(Ok(resp)) => resp,
            };
            let Some(kv) = resp.kvs().first() else {
                let end = match versions.last() {
                    Some(v) => format!("created at revision {}", v.create_revision),
                    None => "no earlier version: created by this one".into(),
                };
                return Ok(KeyHistory { versions, end });
            };
            let info = value_info(kv);
            before = info.mod_revision;
            versions.push(info);
        }
    }

    /// The compare-and-swap write: a Txn that compares the mod_revision the user saw.
    /// A membership change (or a leadership move) through one endpoint.
    async fn member_op(&self, endpoint: &str, op: &MemberOp) -> Result<MemberOutcome, WriteError> {
        let mut client = self.client(endpoint).await.map_err(WriteError::Unreachable)?;
        let timeout = self.config.command_timeout;
        match op {
            MemberOp::Add { peer_urls, learner, .. } => {
                let options = learner.then(|| etcd_client::MemberAddOptions::new().with_is_learner());
                let resp = send(timeout, client.member_add(peer_urls.clone(), options)).await?;
                let id = resp.member().map_or(0, |m| m.id());
                let members = resp.member_list().iter().map(member_info).collect();
                Ok(MemberOutcome::Added { id, members })
            }
            MemberOp::Promote { id, .. } => {
                send(timeout, client.member_promote(*id)).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::Remove { id, .. } => {
                send(timeout, client.member_remove(*id)).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::Update { id, peer_urls, .. } => {
                send(timeout, client.member_update(*id, peer_urls.clone())).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::MoveLeader { id, .. } => {
                send(timeout, client.move_leader(*id)).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::Compact { revision } => {
                send(timeout, client.compact(*revision, None)).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::Defragment { .. } => {
                // A large database takes a while: wait a minute at least.
                let limit = timeout.max(Duration::from_secs(60));
                send(limit, client.defragment()).await?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::Disarm { alarms } => {
                // As etcdctl's `alarm disarm`: each raised alarm in turn.
                let mut done = Vec::new();
                for a in alarms {
                    let kind = match a.kind {
                        crate::app::cluster::AlarmKind::Nospace => etcd_client::AlarmType::Nospace,
                        crate::app::cluster::AlarmKind::Corrupt => etcd_client::AlarmType::Corrupt,
                        crate::app::cluster::AlarmKind::Other(_) => etcd_client::AlarmType::None,
                    };
                    let mut options = etcd_client::AlarmOptions::new();
                    options.with_member(a.member_id);
                    let disarm = client.alarm(etcd_client::AlarmAction::Deactivate, kind, Some(options));
                    send(timeout, disarm).await?;
                    done.push(format!("{} of {:x} disarmed", a.kind, a.member_id));
                }
                Ok(MemberOutcome::Report(done))
            }
            // Processes are the demo's, never a worker's.
            MemberOp::Kill { name, .. } => {
                Err(WriteError::Answered(format!("{name}: only etcdeck demo kills members' processes")))
            }
            MemberOp::Auth(op) => {
                use crate::app::auth::{AuthOp, PermKind};
                let mut auth = client.auth_client();
                let done = match op {
                    AuthOp::UserAdd { name, password } => {
                        let (password, options) = match password {
                            Some(p) => (p.0.clone(), None),
                            None => (String::new(), Some(etcd_client::UserAddOptions::new().with_no_pwd())),
                        };
                        send(timeout, auth.user_add(name.clone(), password, options)).await.map(|_| ())
                    }
                    AuthOp::UserDelete { name } => {
                        send(timeout, auth.user_delete(name.clone())).await.map(|_| ())
                    }
                    AuthOp::RoleAdd { name } => send(timeout, auth.role_add(name.clone())).await.map(|_| ()),
                    AuthOp::RoleDelete { name } => {
                        send(timeout, auth.role_delete(name.clone())).await.map(|_| ())
                    }
                    AuthOp::GrantRole { user, role } => {
                        send(timeout, auth.user_grant_role(user.clone(), role.clone())).await.map(|_| ())
                    }
                    AuthOp::RevokeRole { user, role } => {
                        send(timeout, auth.user_revoke_role(user.clone(), role.clone())).await.map(|_| ())
                    }
                    AuthOp::GrantPermission { role, kind, key, range_end } => {
                        let perm = match kind {
                            PermKind::Read => etcd_client::Permission::read(key.clone()),
                            PermKind::Write => etcd_client::Permission::write(key.clone()),
                            PermKind::ReadWrite => etcd_client::Permission::read_write(key.clone()),
                        }
                        .with_range_end(range_end.clone());
                        send(timeout, auth.role_grant_permission(role.clone(), perm)).await.map(|_| ())
                    }
                    AuthOp::RevokePermission { role, key, range_end } => {
                        let options =
                            etcd_client::RoleRevokePermissionOptions::new().with_range_end(range_end.clone());
                        let revoke = auth.role_revoke_permission(role.clone(), key.clone(), Some(options));
                        send(timeout, revoke).await.map(|_| ())
                    }
                };
                done?;
                Ok(MemberOutcome::Done)
            }
            MemberOp::DefragmentAll { .. } => Err(WriteError::Answered(
                "internal error: a rolling defragmentation is run by Worker::run".into(),
            )),
        }
    }

    async fn write(&self, endpoint: &str, write: &Write) -> Result<WriteOutcome, WriteError> {
        let mut client = self.client(endpoint).await.map_err(WriteError::Unreachable)?;
        let timeout = self.config.command_timeout;
        match write {
            Write::Put { key, value, expect, lease } => {
                let mut granted = None;
                let mut options = PutOptions::new();
                match lease {
                    LeaseChoice::None => {}
                    LeaseChoice::Keep => options = options.with_ignore_lease(),
                    LeaseChoice::Existing(id) => options = options.with_lease(*id),
                    LeaseChoice::New { ttl } => {
                        let resp = send(timeout, client.lease_grant(*ttl, None)).await?;
                        granted = Some(resp.id());
                        options = options.with_lease(resp.id());
                    }
                }
                let txn = Txn::new()
                    .when([Compare::mod_revision(key.clone(), CompareOp::Equal, *expect)])
                    .and_then([TxnOp::put(key.clone(), value.clone(), Some(options))])
                    .or_else([TxnOp::get(key.clone(), None)]);
                let resp = match send(timeout, client.txn(txn)).await {
                    Ok(resp) => resp,
                    // The put may have landed: revoking its lease would delete the key. The lease
                    // is left to expire by its TTL, and the put is not sent again elsewhere.
                    Err(e) => {
                        return Err(match granted {
                            Some(id) => WriteError::Unknown(format!(
                                "{} (the put may or may not have been made; lease {id:x} granted for it \
                                 expires on its own if not)",
                                e.text()
                            )),
                            None => e,
                        })
                    }
                };
                if resp.succeeded() {
                    let revision = resp.header().map_or(0, |h| h.revision());
                    return Ok(WriteOutcome::Done { revision, lease: granted, deleted: 0 });
                }
                // The compare failed, so nothing was put: the lease granted for it goes back.
                if let Some(id) = granted {
                    let _ = with_timeout(timeout, client.lease_revoke(id)).await;
                }
                Ok(WriteOutcome::Conflict { current: txn_get(&resp) })
            }
            Write::Delete { key, expect } => {
                let txn = Txn::new()
                    .when([Compare::mod_revision(key.clone(), CompareOp::Equal, *expect)])
                    .and_then([TxnOp::delete(key.clone(), None)])
                    .or_else([TxnOp::get(key.clone(), None)]);
                let resp = send(timeout, client.txn(txn)).await?;
                if !resp.succeeded() {
                    return Ok(WriteOutcome::Conflict { current: txn_get(&resp) });
                }
                Ok(deleted(&resp))
            }
            Write::DeletePrefix { prefix, revision, .. } => {
                let (start, end) = edit::prefix_range(prefix);
                // No key under the prefix may have changed after it was counted.
                let unchanged = Compare::mod_revision(start.clone(), CompareOp::Less, revision + 1)
                    .with_range(end.clone());
                let txn = Txn::new()
                    .when([unchanged])
                    .and_then([TxnOp::delete(
                        start.clone(),
                        Some(DeleteOptions::new().with_range(end.clone())),
                    )])
                    .or_else([TxnOp::get(start, Some(GetOptions::new().with_range(end).with_count_only()))]);
                let resp = send(timeout, client.txn(txn)).await?;
                if !resp.succeeded() {
                    let count = resp
                        .op_responses()
                        .into_iter()
                        .map(|op| match op {
                            TxnOpResponse::Get(g) => g.count(),
                            _ => 0,
                        })
                        .sum();
                    return Ok(WriteOutcome::PrefixChanged { count });
                }
                Ok(deleted(&resp))
            }
        }
    }

    /// A linearizable count of the keys under `prefix`, with the revision it was read at.
    async fn count_now(&self, endpoint: &str, prefix: &[u8]) -> Result<(i64, i64), String> {
        let mut client = self.client(endpoint).await?;
        let (start, end) = edit::prefix_range(prefix);
        let options = GetOptions::new().with_range(end).with_count_only();
        let resp = with_timeout(self.config.command_timeout, client.get(start, Some(options))).await?;
        Ok((resp.count(), resp.header().map_or(0, |h| h.revision())))
    }

    async fn count_keys(&self, endpoint: &str, prefix: &[u8], revision: i64) -> Result<i64, String> {
        let mut client = self.client(endpoint).await?;
        let start = if prefix.is_empty() { vec![0] } else { prefix.to_vec() };
        let options = GetOptions::new()
            .with_range(keys::prefix_end(prefix))
            .with_count_only()
            .with_serializable()
            .with_revision(revision);
        let resp = with_timeout(self.config.command_timeout, client.get(start, Some(options))).await?;
        Ok(resp.count())
    }

    async fn value(&self, endpoint: &str, key: &[u8]) -> Result<Option<ValueRead>, String> {
        let mut client = self.client(endpoint).await?;
        let resp = with_timeout(self.config.command_timeout, client.get(key, None)).await?;
        let Some(info) = resp.kvs().first().map(value_info) else { return Ok(None) };
        let mut lease_ttl = None;
        if info.lease != 0 {
            // The remaining TTL is a nicety: without it (no permission, say) the value still shows.
            let ttl =
                with_timeout(self.config.command_timeout, client.lease_time_to_live(info.lease, None)).await;
            lease_ttl = ttl.ok().map(|t| t.ttl());
        }
        // The pane reads its key again every round: an unchanged Kubernetes object is not decoded
        // and written out again.
        let mut last = self.last_value.lock().map_err(|_| "the value cache is poisoned".to_string())?;
        let read = ValueRead::again(info, lease_ttl, last.as_ref());
        *last = Some(read.decoding());
        Ok(Some(read))
    }

    /// Defragments the members one after another, in the order given; after each, waits (up to 30 s)
    /// until it answers a linearizable read again. Stops at the first failure, saying what was done.
    pub(super) async fn defragment_rolling(
        &self,
        members: &[(u64, String, String)],
        progress: impl Fn(String),
    ) -> Result<MemberOutcome, String> {
        let mut done: Vec<String> = Vec::new();
        for (i, (id, name, endpoint)) in members.iter().enumerate() {
            let who = if name.is_empty() { format!("{id:x}") } else { name.clone() };
            let fail = |what: String, done: &[String]| {
                let rest: Vec<&str> = members[i + 1..].iter().map(|(_, n, _)| n.as_str()).collect();
                format!(
                    "{who}: {what}. Stopped there: {} defragmented before it{}",
                    done.len(),
                    if rest.is_empty() {
                        String::new()
                    } else {
                        format!("; not started: {}", rest.join(", "))
                    }
                )
            };
            let db_size = |s: &etcd_client::StatusResponse| crate::app::format::bytes(s.db_size());
            let mut client = match self.client(endpoint).await {
                Ok(c) => c,
                Err(e) => return Err(fail(e, &done)),
            };
            let timeout = self.config.command_timeout;
            let before = with_timeout(timeout, client.status()).await.ok();
            let started = Instant::now();
            if let Err(e) = with_timeout(timeout.max(Duration::from_secs(60)), client.defragment()).await {
                return Err(fail(e, &done));
            }
            let took = started.elapsed();
            let learner = before.as_ref().is_some_and(|s| s.is_learner());
            let deadline = Instant::now() + Duration::from_secs(30);
            let healthy_after = loop {
                let asked = Instant::now();
                match self.health(endpoint, learner).await {
                    Ok(_) => break asked.duration_since(started + took),
                    Err(e) if Instant::now() > deadline => {
                        return Err(fail(format!("defragmented, but not healthy within 30 s: {e}"), &done));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let after = with_timeout(timeout, client.status()).await.ok();
            let sizes = match (&before, &after) {
                (Some(b), Some(a)) => format!("{} → {}", db_size(b), db_size(a)),
                _ => "size not known".into(),
            };
            let line = format!(
                "{who}: {sizes} in {}, healthy {} later",
                crate::app::format::millis(took),
                crate::app::format::millis(healthy_after)
            );
            progress(line.clone());
            done.push(line);
        }
        Ok(MemberOutcome::Report(done))
    }

    async fn health(&self, endpoint: &str, serializable: bool) -> Result<Duration, String> {
        let mut client = self.client(endpoint).await?;
        let started = Instant::now();
        let mut options = GetOptions::new().with_limit(1);
        if serializable {
            options = options.with_serializable();
        }
        let result =
            tokio::time::timeout(self.config.command_timeout, client.get("health", Some(options))).await;
        match result {
            Err(_) => Err(deadline_exceeded(self.config.command_timeout)),
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(etcd_client::Error::GRpcStatus(s))) if s.code() == tonic::Code::PermissionDenied => {
                Ok(started.elapsed())
            }
            Ok(Err(e)) => Err(error_text(&e)),
        }
    }
}

fn value_info(kv: &etcd_client::KeyValue) -> ValueInfo {
    ValueInfo {
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

/// The key a failed compare-and-swap read in its else branch (None: the key does not exist).
fn txn_get(resp: &etcd_client::TxnResponse) -> Option<ValueInfo> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().map(value_info),
        _ => None,
    })
}

/// A delete that went through: how many keys it deleted, at which revision.
fn deleted(resp: &etcd_client::TxnResponse) -> WriteOutcome {
    let deleted = resp
        .op_responses()
        .into_iter()
        .map(|op| match op {
            TxnOpResponse::Delete(d) => d.deleted(),
            _ => 0,
        })
        .sum();
    WriteOutcome::Done { revision: resp.header().map_or(0, |h| h.revision()), lease: None, deleted }
}

/// A member as etcd-client gives it, as the console keeps it.
fn member_info(m: &etcd_client::Member) -> MemberInfo {
    MemberInfo {
        id: m.id(),
        name: m.name().to_string(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        is_learner: m.is_learner(),
    }
}

/// The reply an effect gets when its worker failed without an answer from etcd.
pub(super) fn failed(effect: Effect, error: String) -> Msg {
    match effect {
        Effect::ListMembers { refresh } => Msg::Members { refresh, result: Err(error) },
        Effect::FetchStatus { refresh, member_id, endpoint } => {
            Msg::Status { refresh, member_id, endpoint, result: Err(error) }
        }
        Effect::CheckHealth { refresh, member_id, endpoint, .. } => {
            Msg::Health { refresh, member_id, endpoint, result: Err(error) }
        }
        Effect::Keys(KeyRequest::List { request, .. }) => Msg::KeyPage { request, result: Err(error) },
        Effect::Keys(KeyRequest::Value { request, .. }) => Msg::Value { request, result: Err(error) },
        Effect::Keys(KeyRequest::Count { request, .. }) => Msg::KeyCount { request, result: Err(error) },
        Effect::Keys(KeyRequest::History { request, .. }) => Msg::History { request, result: Err(error) },
        Effect::Write { request, .. } => Msg::Written { request, result: Err(error) },
        Effect::CountPrefix { request, .. } => Msg::PrefixCount { request, result: Err(error) },
        Effect::Mirrors { request } => Msg::Mirrors { request, result: Err(error) },
        Effect::ListBackups { request, .. } => Msg::Backups { request, result: Err(error) },
        Effect::Watch { tail, .. } | Effect::StopWatch { tail } => {
            Msg::Watch { tail, report: WatchReport::Status(TailStatus::Failed(error)), ack: Ack::default() }
        }
        Effect::Editor { .. } | Effect::Copy { .. } => Msg::Value { request: 0, result: Err(error) },
        Effect::MemberProcess { .. } | Effect::SwitchContext { .. } => Msg::Process { result: Err(error) },
        Effect::Member { request, .. } => Msg::Member { request, result: Err(error) },
        Effect::LoadAuth { request, .. } => Msg::Auth { request, result: Err(error) },
        Effect::SaveSnapshot { request, .. } => Msg::SnapshotSaved { request, result: Err(error) },
        Effect::Space { request, .. } | Effect::StopSpace { request } => {
            Msg::Space { request, result: Err(error) }
        }
        Effect::CheckSnapshotFile { request, .. } => Msg::SnapshotFile { request, result: Err(error) },
        Effect::RestoreLocal { request, .. } => Msg::RestoreDirs { request, result: Err(error) },
        Effect::ReplaceProcess { request, .. } => Msg::ReplaceProcess { request, result: Err(error) },
        Effect::FinishRestore { request, .. } => Msg::Restored { request, result: Err(error) },
    }
}

pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}
