//! etcd's auth store: users, roles and the key permissions roles carry, changed only by applied raft
//! entries (so every member holds the same), with etcd's rules and errors (auth/store.go); simple
//! tokens; and the permission checks requests go through (etcd's range permission cache: a read or
//! write over a range is allowed when the user's roles cover all of it, a single key when one of
//! them holds it).
//!
//! Passwords never enter the raft log or the store in plain text: the member a request reaches
//! hashes it with bcrypt before proposing, as etcd 3.5 does.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::node::error::NodeError;

/// The user and the role that may do anything (etcd's rootUser, rootRole).
pub const ROOT: &str = "root";

/// etcd's --bcrypt-cost default (bcrypt.DefaultCost).
pub const DEFAULT_BCRYPT_COST: u32 = 10;

/// etcd's --auth-token-ttl default, in seconds.
pub const DEFAULT_TOKEN_TTL: u64 = 300;

/// What a permission allows (authpb.Permission.Type: READ = 0, WRITE = 1, READWRITE = 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermKind {
    Read,
    Write,
    ReadWrite,
}

impl PermKind {
    pub fn from_pb(v: i32) -> Option<Self> {
        match v {
            0 => Some(PermKind::Read),
            1 => Some(PermKind::Write),
            2 => Some(PermKind::ReadWrite),
            _ => None,
        }
    }

    pub fn to_pb(self) -> i32 {
        match self {
            PermKind::Read => 0,
            PermKind::Write => 1,
            PermKind::ReadWrite => 2,
        }
    }

    fn allows(self, op: Op) -> bool {
        matches!(
            (self, op),
            (PermKind::ReadWrite, _) | (PermKind::Read, Op::Read) | (PermKind::Write, Op::Write)
        )
    }
}

/// A read or a write, as a request needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

/// One key permission of a role: a key (empty `range_end`), a range `[key, range_end)`, or every
/// key from `key` on (`range_end` = "\0").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perm {
    pub kind: PermKind,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct User {
    /// The bcrypt hash; None for a user added with --no-password (who cannot authenticate with a
    /// password, only by a client certificate).
    pub password: Option<String>,
    pub roles: BTreeSet<String>,
}

/// Who sent a request, as far as auth goes: the user, and the auth store's revision when the
/// request was checked (etcd's AuthInfo). Carried in raft entries so the member applying a write
/// checks its permissions again against the store as it is then.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub user: String,
    pub revision: u64,
}

/// The whole auth store. Small (users and roles), so it is kept and persisted whole.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthState {
    pub enabled: bool,
    /// Moves on with every change (etcd's auth revision).
    pub revision: u64,
    pub users: BTreeMap<String, User>,
    /// Each role's permissions, sorted by key as etcd keeps them.
    pub roles: BTreeMap<String, Vec<Perm>>,
}

/// A change to the auth store, carried in a raft entry (JSON). Passwords arrive hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthWrite {
    Enable,
    Disable,
    /// The password was checked by the member the client asked; the token is `prefix.index`.
    Authenticate {
        name: String,
        token_prefix: String,
    },
    /// `hash` None: a user without a password.
    UserAdd {
        name: String,
        hash: Option<String>,
    },
    UserDelete {
        name: String,
    },
    UserChangePassword {
        name: String,
        hash: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        name: String,
        role: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        role: String,
    },
    RoleGrantPermission {
        name: String,
        perm: Perm,
    },
    RoleRevokePermission {
        role: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

impl AuthWrite {
    /// Every change but Authenticate needs the root role once auth is enabled (etcd's
    /// needAdminPermission).
    pub fn needs_admin(&self) -> bool {
        !matches!(self, AuthWrite::Authenticate { .. })
    }
}

/// What applying an AuthWrite gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Done,
    Token(String),
}

impl AuthState {
    pub fn has_root_role(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| u.roles.contains(ROOT))
    }

    /// etcd's IsAdminPermitted.
    pub fn admin_permitted(&self, caller: Option<&Caller>) -> Result<(), NodeError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = caller.filter(|c| !c.user.is_empty()) else { return Err(NodeError::UserEmpty) };
        match self.users.get(&caller.user) {
            None => Err(NodeError::UserNotFound),
            Some(u) if !u.roles.contains(ROOT) => Err(NodeError::PermissionDenied),
            Some(_) => Ok(()),
        }
    }

    /// etcd's isOpPermitted: `range_end` empty for one key, "\0" for every key from `key` on.
    pub fn permitted(
        &self,
        caller: Option<&Caller>,
        key: &[u8],
        range_end: &[u8],
        op: Op,
    ) -> Result<(), NodeError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = caller.filter(|c| c.revision != 0) else { return Err(NodeError::UserEmpty) };
        if caller.revision < self.revision {
            return Err(NodeError::AuthOldRevision);
        }
        let Some(user) = self.users.get(&caller.user) else { return Err(NodeError::PermissionDenied) };
        if user.roles.contains(ROOT) || self.covers(user, key, range_end, op) {
            Ok(())
        } else {
            Err(NodeError::PermissionDenied)
        }
    }

    /// The intervals `user`'s roles grant for `op`, as etcd's permission cache builds them.
    fn intervals(&self, user: &User, op: Op) -> Vec<(Bound, Bound)> {
        let mut out = Vec::new();
        for perm in user.roles.iter().filter_map(|r| self.roles.get(r)).flatten() {
            if !perm.kind.allows(op) {
                continue;
            }
            out.push(if perm.range_end.is_empty() {
                point(&perm.key)
            } else if perm.range_end == [0] {
                (Bound(perm.key.clone()), Bound(Vec::new()))
            } else {
                (Bound(perm.key.clone()), Bound(perm.range_end.clone()))
            });
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn covers(&self, user: &User, key: &[u8], range_end: &[u8], op: Op) -> bool {
        let intervals = self.intervals(user, op);
        if range_end.is_empty() {
            // A single key: one interval holding it is enough (etcd's checkKeyPoint).
            let (b, e) = point(key);
            return intervals.iter().any(|(ib, ie)| *ib < e && b < *ie);
        }
        let end = if range_end == [0] { Vec::new() } else { range_end.to_vec() };
        contains(&intervals, &(Bound(key.to_vec()), Bound(end)))
    }

    /// The key ranges `user` may read (the roles' read and readwrite permissions): where a
    /// limited user's key browser starts.
    pub fn readable(&self, user: &str) -> Vec<Perm> {
        let Some(u) = self.users.get(user) else { return Vec::new() };
        let mut out: Vec<Perm> = (u.roles.iter().filter_map(|r| self.roles.get(r)).flatten())
            .filter(|p| p.kind.allows(Op::Read))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup();
        out
    }

    /// Applies one change with etcd's rules. `index` is the raft entry's (simple tokens end with
    /// it); `tokens` learns new tokens and forgets those of deleted users or changed passwords.
    pub fn apply(&mut self, w: &AuthWrite, index: u64, tokens: &Tokens) -> Result<AuthOutcome, NodeError> {
        match w {
            AuthWrite::Enable => {
                if self.enabled {
                    return Ok(AuthOutcome::Done);
                }
                let Some(root) = self.users.get(ROOT) else { return Err(NodeError::RootUserNotExist) };
                if !root.roles.contains(ROOT) {
                    return Err(NodeError::RootRoleNotExist);
                }
                self.enabled = true;
                return Ok(AuthOutcome::Done);
            }
            AuthWrite::Disable => {
                if !self.enabled {
                    return Ok(AuthOutcome::Done);
                }
                self.enabled = false;
                tokens.clear();
            }
            AuthWrite::Authenticate { name, token_prefix } => {
                if !self.enabled {
                    return Err(NodeError::AuthNotEnabled);
                }
                match self.users.get(name) {
                    Some(u) if u.password.is_some() => {}
                    _ => return Err(NodeError::AuthFailed),
                }
                let token = format!("{token_prefix}.{index}");
                tokens.assign(&token, name);
                return Ok(AuthOutcome::Token(token));
            }
            AuthWrite::UserAdd { name, hash } => {
                if name.is_empty() {
                    return Err(NodeError::UserEmpty);
                }
                if self.users.contains_key(name) {
                    return Err(NodeError::UserAlreadyExist);
                }
                self.users.insert(name.clone(), User { password: hash.clone(), roles: BTreeSet::new() });
            }
            AuthWrite::UserDelete { name } => {
                if self.enabled && name == ROOT {
                    return Err(NodeError::InvalidAuthMgmt);
                }
                if self.users.remove(name).is_none() {
                    return Err(NodeError::UserNotFound);
                }
                tokens.invalidate_user(name);
            }
            AuthWrite::UserChangePassword { name, hash } => {
                let Some(user) = self.users.get_mut(name) else { return Err(NodeError::UserNotFound) };
                user.password = Some(hash.clone());
                tokens.invalidate_user(name);
            }
            AuthWrite::UserGrantRole { user, role } => {
                if !self.users.contains_key(user) {
                    return Err(NodeError::UserNotFound);
                }
                if role != ROOT && !self.roles.contains_key(role) {
                    return Err(NodeError::RoleNotFound);
                }
                let Some(u) = self.users.get_mut(user) else { return Err(NodeError::UserNotFound) };
                if !u.roles.insert(role.clone()) {
                    // etcd ignores a grant the user already has: no new revision.
                    return Ok(AuthOutcome::Done);
                }
            }
            AuthWrite::UserRevokeRole { name, role } => {
                if self.enabled && name == ROOT && role == ROOT {
                    return Err(NodeError::InvalidAuthMgmt);
                }
                let Some(u) = self.users.get_mut(name) else { return Err(NodeError::UserNotFound) };
                if !u.roles.remove(role) {
                    return Err(NodeError::RoleNotGranted);
                }
            }
            AuthWrite::RoleAdd { name } => {
                if name.is_empty() {
                    return Err(NodeError::RoleEmpty);
                }
                if self.roles.contains_key(name) {
                    return Err(NodeError::RoleAlreadyExist);
                }
                self.roles.insert(name.clone(), Vec::new());
            }
            AuthWrite::RoleDelete { role } => {
                if self.enabled && role == ROOT {
                    return Err(NodeError::InvalidAuthMgmt);
                }
                if self.roles.remove(role).is_none() {
                    return Err(NodeError::RoleNotFound);
                }
                for u in self.users.values_mut() {
                    u.roles.remove(role);
                }
            }
            AuthWrite::RoleGrantPermission { name, perm } => {
                let Some(perms) = self.roles.get_mut(name) else { return Err(NodeError::RoleNotFound) };
                match perms.iter_mut().find(|p| p.key == perm.key && p.range_end == perm.range_end) {
                    Some(p) => p.kind = perm.kind,
                    None => {
                        perms.push(perm.clone());
                        perms.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                }
            }
            AuthWrite::RoleRevokePermission { role, key, range_end } => {
                let Some(perms) = self.roles.get_mut(role) else { return Err(NodeError::RoleNotFound) };
                let before = perms.len();
                perms.retain(|p| !(p.key == *key && p.range_end == *range_end));
                if perms.len() == before {
                    return Err(NodeError::PermissionNotGranted);
                }
            }
        }
        self.revision += 1;
        Ok(AuthOutcome::Done)
    }
}

/// A key as an interval bound, ordered as etcd's BytesAffineComparable: the empty key stands for
/// "past every key".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound(Vec<u8>);

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.0.is_empty(), other.0.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.0.cmp(&other.0),
        }
    }
}

/// The interval holding exactly `key`: `[key, key + "\0")`.
fn point(key: &[u8]) -> (Bound, Bound) {
    let mut end = key.to_vec();
    end.push(0);
    (Bound(key.to_vec()), Bound(end))
}

/// Whether `sorted` (by begin) covers all of `want` without a gap (etcd's IntervalTree.Contains).
fn contains(sorted: &[(Bound, Bound)], want: &(Bound, Bound)) -> bool {
    let mut span: Option<(&Bound, &Bound)> = None;
    for (b, e) in sorted.iter().filter(|(b, e)| *b < want.1 && want.0 < *e) {
        span = match span {
            None => Some((b, e)),
            Some((_, end)) if end < b => return false,
            Some((begin, end)) => Some((begin, end.max(e))),
        };
    }
    span.is_some_and(|(begin, end)| *begin <= want.0 && *end >= want.1)
}

/// etcd's simple tokens: `<16 random letters>.<raft index>`, each valid for the TTL since it was
/// last used. Every member learns each token when it applies the Authenticate entry; they live
/// in memory only, so a restart forgets them (as etcd's do).
pub struct Tokens {
    ttl: Duration,
    inner: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens { ttl, inner: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn assign(&self, token: &str, user: &str) {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
        map.insert(token.to_string(), (user.to_string(), now));
    }

    /// The token's user, if it is known and not expired; using it starts its TTL again.
    pub fn user(&self, token: &str) -> Option<String> {
        let mut map = self.lock();
        let now = Instant::now();
        let entry = map.get_mut(token)?;
        if now.duration_since(entry.1) >= self.ttl {
            map.remove(token);
            return None;
        }
        entry.1 = now;
        Some(entry.0.clone())
    }

    pub fn invalidate_user(&self, user: &str) {
        self.lock().retain(|_, (u, _)| u != user);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// 16 random letters, the first part of a simple token (etcd's genTokenPrefix).
pub fn token_prefix() -> Result<String, NodeError> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Storage(format!("no randomness for a token: {e}")))?;
    // 256 is not a multiple of 52: drop the few values that would favour some letters.
    let mut out = String::with_capacity(16);
    let mut pool = bytes.to_vec();
    while out.len() < 16 {
        match pool.pop() {
            Some(b) if (b as usize) < 52 * 4 => out.push(LETTERS[b as usize % 52] as char),
            Some(_) => {}
            None => {
                let mut more = [0u8; 16];
                getrandom::fill(&mut more)
                    .map_err(|e| NodeError::Storage(format!("no randomness for a token: {e}")))?;
                pool.extend_from_slice(&more);
            }
        }
    }
    Ok(out)
}

/// Hashes a password with bcrypt at `cost` (run it off the async threads: it takes tens of ms).
pub fn hash_password(password: &str, cost: u32) -> Result<String, NodeError> {
    bcrypt::hash(password, cost).map_err(|e| NodeError::Storage(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the bcrypt `hash`.
pub fn check_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (AuthState, Tokens) {
        let mut s = AuthState::default();
        let t = Tokens::new(Duration::from_secs(300));
        let apply = |s: &mut AuthState, w: AuthWrite| s.apply(&w, 1, &t).map(|_| ());
        apply(&mut s, AuthWrite::UserAdd { name: ROOT.into(), hash: Some("h".into()) }).unwrap();
        apply(&mut s, AuthWrite::UserGrantRole { user: ROOT.into(), role: ROOT.into() }).unwrap();
        apply(&mut s, AuthWrite::UserAdd { name: "u".into(), hash: Some("h".into()) }).unwrap();
        apply(&mut s, AuthWrite::RoleAdd { name: "r".into() }).unwrap();
        apply(&mut s, AuthWrite::UserGrantRole { user: "u".into(), role: "r".into() }).unwrap();
        (s, t)
    }

    fn grant(s: &mut AuthState, t: &Tokens, kind: PermKind, key: &str, end: &str) {
        let perm = Perm { kind, key: key.into(), range_end: end.into() };
        s.apply(&AuthWrite::RoleGrantPermission { name: "r".into(), perm }, 1, t).unwrap();
    }

    fn caller(s: &AuthState, user: &str) -> Caller {
        Caller { user: user.into(), revision: s.revision }
    }

    #[test]
    fn enabling_needs_a_root_user_with_the_root_role() {
        let t = Tokens::new(Duration::from_secs(1));
        let mut s = AuthState::default();
        assert_eq!(s.apply(&AuthWrite::Enable, 1, &t), Err(NodeError::RootUserNotExist));
        s.apply(&AuthWrite::UserAdd { name: ROOT.into(), hash: None }, 1, &t).unwrap();
        assert_eq!(s.apply(&AuthWrite::Enable, 1, &t), Err(NodeError::RootRoleNotExist));
        let rev = s.revision;
        s.apply(&AuthWrite::UserGrantRole { user: ROOT.into(), role: ROOT.into() }, 1, &t).unwrap();
        assert_eq!(s.revision, rev + 1, "the root role need not exist to be granted");
        s.apply(&AuthWrite::Enable, 1, &t).unwrap();
        assert!(s.enabled);
        assert_eq!(
            s.apply(&AuthWrite::UserDelete { name: ROOT.into() }, 1, &t),
            Err(NodeError::InvalidAuthMgmt)
        );
        let revoke = AuthWrite::UserRevokeRole { name: ROOT.into(), role: ROOT.into() };
        assert_eq!(s.apply(&revoke, 1, &t), Err(NodeError::InvalidAuthMgmt));
        assert_eq!(
            s.apply(&AuthWrite::RoleDelete { role: ROOT.into() }, 1, &t),
            Err(NodeError::InvalidAuthMgmt)
        );
    }

    #[test]
    fn management_errors_are_etcds() {
        let (mut s, t) = state();
        let mut apply = |w: AuthWrite| s.apply(&w, 1, &t).map(|_| ());
        assert_eq!(apply(AuthWrite::UserAdd { name: "".into(), hash: None }), Err(NodeError::UserEmpty));
        assert_eq!(
            apply(AuthWrite::UserAdd { name: "u".into(), hash: None }),
            Err(NodeError::UserAlreadyExist)
        );
        assert_eq!(apply(AuthWrite::RoleAdd { name: "".into() }), Err(NodeError::RoleEmpty));
        assert_eq!(apply(AuthWrite::RoleAdd { name: "r".into() }), Err(NodeError::RoleAlreadyExist));
        let g = AuthWrite::UserGrantRole { user: "u".into(), role: "nope".into() };
        assert_eq!(apply(g), Err(NodeError::RoleNotFound));
        let g = AuthWrite::UserGrantRole { user: "nobody".into(), role: "r".into() };
        assert_eq!(apply(g), Err(NodeError::UserNotFound));
        let r = AuthWrite::UserRevokeRole { name: "u".into(), role: "other".into() };
        assert_eq!(apply(r), Err(NodeError::RoleNotGranted));
        let r = AuthWrite::RoleRevokePermission { role: "r".into(), key: b"a".to_vec(), range_end: vec![] };
        assert_eq!(apply(r), Err(NodeError::PermissionNotGranted));
        assert_eq!(
            apply(AuthWrite::Authenticate { name: "u".into(), token_prefix: "x".into() }),
            Err(NodeError::AuthNotEnabled)
        );
        assert_eq!(apply(AuthWrite::RoleDelete { role: "r".into() }), Ok(()));
        assert!(s.users["u"].roles.is_empty(), "deleting a role takes it from its users");
    }

    #[test]
    fn grants_cover_keys_ranges_prefixes_and_from_key_as_etcds_cache_does() {
        let (mut s, t) = state();
        s.apply(&AuthWrite::Enable, 1, &t).unwrap();
        grant(&mut s, &t, PermKind::Read, "k", "");
        grant(&mut s, &t, PermKind::ReadWrite, "a", "c");
        grant(&mut s, &t, PermKind::Write, "c", "e");
        grant(&mut s, &t, PermKind::Read, "x", "\0");
        let u = caller(&s, "u");
        let ok =
            |key: &str, end: &str, op: Op| s.permitted(Some(&u), key.as_bytes(), end.as_bytes(), op).is_ok();
        assert!(ok("k", "", Op::Read));
        assert!(!ok("k", "", Op::Write));
        assert!(!ok("k", "l", Op::Read), "a range needs all of it covered");
        assert!(ok("a", "c", Op::Read) && ok("b", "bz", Op::Write));
        assert!(ok("a", "e", Op::Write), "adjacent grants join");
        assert!(!ok("a", "e", Op::Read), "c..e is write only");
        assert!(!ok("a", "\0", Op::Write), "from-key needs everything after");
        assert!(ok("x", "\0", Op::Read) && ok("y", "\0", Op::Read) && ok("zzz", "", Op::Read));
        assert!(!ok("w", "\0", Op::Read));
        let root = caller(&s, ROOT);
        assert!(s.permitted(Some(&root), b"anything", b"\0", Op::Write).is_ok());
        assert_eq!(s.permitted(None, b"k", b"", Op::Read), Err(NodeError::UserEmpty));
        let old = Caller { user: "u".into(), revision: s.revision - 1 };
        assert_eq!(s.permitted(Some(&old), b"k", b"", Op::Read), Err(NodeError::AuthOldRevision));
        let ghost = caller(&s, "ghost");
        assert_eq!(s.permitted(Some(&ghost), b"k", b"", Op::Read), Err(NodeError::PermissionDenied));
        assert_eq!(s.admin_permitted(Some(&u)), Err(NodeError::PermissionDenied));
        assert_eq!(s.admin_permitted(Some(&ghost)), Err(NodeError::UserNotFound));
        assert!(s.admin_permitted(Some(&root)).is_ok());
        // A revoked grant takes effect at once.
        let r = AuthWrite::RoleRevokePermission { role: "r".into(), key: b"k".to_vec(), range_end: vec![] };
        s.apply(&r, 1, &t).unwrap();
        let u = caller(&s, "u");
        assert_eq!(s.permitted(Some(&u), b"k", b"", Op::Read), Err(NodeError::PermissionDenied));
        let readable: Vec<Vec<u8>> = s.readable("u").into_iter().map(|p| p.key).collect();
        assert_eq!(readable, vec![b"a".to_vec(), b"x".to_vec()]);
    }

    #[test]
    fn tokens_end_with_the_index_expire_unless_used_and_go_with_their_user() {
        let (mut s, t) = state();
        s.apply(&AuthWrite::Enable, 1, &t).unwrap();
        let w = AuthWrite::Authenticate { name: "u".into(), token_prefix: "abc".into() };
        assert_eq!(s.apply(&w, 42, &t), Ok(AuthOutcome::Token("abc.42".into())));
        assert_eq!(t.user("abc.42").as_deref(), Some("u"));
        assert_eq!(t.user("abc.43"), None);
        s.apply(&AuthWrite::UserChangePassword { name: "u".into(), hash: "h2".into() }, 2, &t).unwrap();
        assert_eq!(t.user("abc.42"), None, "a new password ends the user's tokens");
        let short = Tokens::new(Duration::from_millis(0));
        short.assign("t.1", "u");
        assert_eq!(short.user("t.1"), None);
        s.apply(&AuthWrite::UserAdd { name: "np".into(), hash: None }, 3, &t).unwrap();
        let w = AuthWrite::Authenticate { name: "np".into(), token_prefix: "abc".into() };
        assert_eq!(s.apply(&w, 4, &t), Err(NodeError::AuthFailed), "no-password users have no token");
        let p = token_prefix().unwrap();
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphabetic()));
    }

    #[test]
    fn passwords_hash_and_check() {
        let h = hash_password("s3cret", 4).unwrap();
        assert!(!h.contains("s3cret"));
        assert!(check_password("s3cret", &h));
        assert!(!check_password("other", &h));
        assert!(!check_password("s3cret", "not a hash"));
    }
}
