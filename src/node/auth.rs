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
                let token = tokens.assign(token_prefix, index, name, self.revision)?;
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
                // A user added without a password stays without one (etcd 3.5).
                if user.password.is_some() {
                    user.password = Some(hash.clone());
                }
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

/// Simple tokens: token -> (user, when last used).
type TokenMap = HashMap<String, (String, Instant)>;

/// How tokens are made and checked (etcd's --auth-token).
pub enum TokenConfig {
    /// `<16 random letters>.<raft index>`, each valid for the TTL since it was last used.
    Simple { ttl: Duration },
    /// Signed JWTs carrying the user and the auth revision, valid until their `exp`.
    Jwt(JwtKeys),
}

/// The auth tokens this member knows or can check. Simple tokens: every member learns each one
/// when it applies the Authenticate entry; they live in memory only, so a restart forgets them (as
/// etcd's do). JWTs: any member holding the key checks them.
pub struct Tokens {
    kind: TokenKind,
}

enum TokenKind {
    Simple { ttl: Duration, map: Mutex<TokenMap> },
    Jwt(JwtKeys),
}

impl Tokens {
    pub fn new(config: TokenConfig) -> Self {
        let kind = match config {
            TokenConfig::Simple { ttl } => TokenKind::Simple { ttl, map: Mutex::new(HashMap::new()) },
            TokenConfig::Jwt(keys) => TokenKind::Jwt(keys),
        };
        Tokens { kind }
    }

    /// Simple tokens with this TTL.
    pub fn simple(ttl: Duration) -> Self {
        Self::new(TokenConfig::Simple { ttl })
    }

    fn map(&self) -> Option<(Duration, std::sync::MutexGuard<'_, TokenMap>)> {
        match &self.kind {
            TokenKind::Simple { ttl, map } => Some((*ttl, map.lock().unwrap_or_else(|e| e.into_inner()))),
            TokenKind::Jwt(_) => None,
        }
    }

    /// A new token for `user` (etcd's assign, when the Authenticate entry at `index` is applied
    /// with the auth store at `revision`).
    pub fn assign(&self, prefix: &str, index: u64, user: &str, revision: u64) -> Result<String, NodeError> {
        if let TokenKind::Jwt(keys) = &self.kind {
            return keys.sign(user, revision);
        }
        let token = format!("{prefix}.{index}");
        if let Some((ttl, mut map)) = self.map() {
            let now = Instant::now();
            map.retain(|_, (_, at)| now.duration_since(*at) < ttl);
            map.insert(token.clone(), (user.to_string(), now));
        }
        Ok(token)
    }

    /// Who a token stands for, if it is valid (etcd's info): a simple token's user with the auth
    /// store's `revision` now (using it starts its TTL again); a JWT's user and the revision it was
    /// signed at.
    pub fn info(&self, token: &str, revision: u64) -> Option<Caller> {
        if let TokenKind::Jwt(keys) = &self.kind {
            return keys.verify(token);
        }
        let (ttl, mut map) = self.map()?;
        let now = Instant::now();
        let entry = map.get_mut(token)?;
        if now.duration_since(entry.1) >= ttl {
            map.remove(token);
            return None;
        }
        entry.1 = now;
        Some(Caller { user: entry.0.clone(), revision })
    }

    /// The user's tokens end (a deleted user, a changed password). A JWT lives until it expires,
    /// as etcd's do.
    pub fn invalidate_user(&self, user: &str) {
        if let Some((_, mut map)) = self.map() {
            map.retain(|_, (u, _)| u != user);
        }
    }

    pub fn clear(&self) {
        if let Some((_, mut map)) = self.map() {
            map.clear();
        }
    }
}

/// etcd's JWT options: `sign-method` (RS256/384/512, PS256/384/512, ES256/384, HS256/384/512),
/// `pub-key`, `priv-key` (PEM files; for HS*, `priv-key` is the secret) and `ttl` (default 5m).
/// With only a public key the member checks tokens but cannot issue them.
pub struct JwtKeys {
    algorithm: jsonwebtoken::Algorithm,
    signing: Option<jsonwebtoken::EncodingKey>,
    checking: jsonwebtoken::DecodingKey,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    // In the order Go's encoding/json writes etcd's map claims: sorted by key.
    exp: u64,
    revision: u64,
    username: String,
}

impl JwtKeys {
    /// Reads the keys the options name; the error is etcd's where etcd has one.
    pub fn load(options: &BTreeMap<String, String>) -> Result<Self, String> {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
        let invalid = || "auth: invalid auth options".to_string();
        let ttl = match options.get("ttl").map(String::as_str) {
            None | Some("") => Duration::from_secs(300),
            Some(t) => crate::etcd::duration::parse_go_duration(t).map_err(|_| invalid())?,
        };
        let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
            match options.get(name).filter(|f| !f.is_empty()) {
                None => Ok(None),
                Some(file) => std::fs::read(file)
                    .map(Some)
                    .map_err(|e| format!("auth: invalid auth options (open {file}: {e})")),
            }
        };
        let (public, private) = (read("pub-key")?, read("priv-key")?);
        let method = options.get("sign-method").map(String::as_str).unwrap_or_default();
        let algorithm: Algorithm = method.parse().map_err(|_| match method {
            "ES512" => {
                "auth: sign-method ES512 is not supported by this node (ES256 and ES384 are)".to_string()
            }
            _ => format!("auth: invalid auth options (sign-method {method:?})"),
        })?;
        let bad = |e: jsonwebtoken::errors::Error| format!("auth: cannot read the {method} key: {e}");
        let (signing, checking) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = private.ok_or("auth: missing key data")?;
                (Some(EncodingKey::from_secret(&secret)), DecodingKey::from_secret(&secret))
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let signing = private.as_deref().map(EncodingKey::from_rsa_pem).transpose().map_err(bad)?;
                let checking = match (&public, &private) {
                    (Some(p), _) => DecodingKey::from_rsa_pem(p).map_err(bad)?,
                    (None, Some(k)) => DecodingKey::from_rsa_der(&rsa_public_of(k)?),
                    (None, None) => return Err("auth: missing key data".into()),
                };
                (signing, checking)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let signing = private.as_deref().map(EncodingKey::from_ec_pem).transpose().map_err(bad)?;
                let checking = match (&public, &private) {
                    (Some(p), _) => DecodingKey::from_ec_pem(p).map_err(bad)?,
                    (None, Some(k)) => DecodingKey::from_ec_der(&ec_public_of(k, algorithm)?),
                    (None, None) => return Err("auth: missing key data".into()),
                };
                (signing, checking)
            }
            Algorithm::EdDSA => return Err(invalid()),
        };
        let keys = JwtKeys { algorithm, signing, checking, ttl };
        // A public key that is not the private key's: etcd's ErrKeyMismatch.
        if keys.signing.is_some() && keys.verify(&keys.sign("check", 1).map_err(|e| e.to_string())?).is_none()
        {
            return Err("auth: public and private keys don't match".into());
        }
        Ok(keys)
    }

    fn sign(&self, user: &str, revision: u64) -> Result<String, NodeError> {
        let Some(key) = &self.signing else { return Err(NodeError::VerifyOnly) };
        let exp = std::time::SystemTime::now()
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let claims = Claims { username: user.to_string(), revision, exp };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(self.algorithm), &claims, key)
            .map_err(|e| NodeError::Storage(format!("cannot sign a token: {e}")))
    }

    fn verify(&self, token: &str) -> Option<Caller> {
        let mut validation = jsonwebtoken::Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.checking, &validation).ok()?;
        Some(Caller { user: data.claims.username, revision: data.claims.revision })
    }
}

/// The PKCS#1 public key of an RSA private key in PEM (PKCS#1 or PKCS#8), for checking tokens when
/// only `priv-key` is given (etcd derives it too).
fn rsa_public_of(pem: &[u8]) -> Result<Vec<u8>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let bad = |e: String| format!("auth: cannot read the RSA private key: {e}");
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(e.to_string()))?;
    let pair = match &der {
        PrivateKeyDer::Pkcs1(k) => ring::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => ring::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(bad("not an RSA key".into())),
    }
    .map_err(|e| bad(e.to_string()))?;
    use ring::signature::KeyPair as _;
    Ok(pair.public_key().as_ref().to_vec())
}

/// The public point of an EC private key in PKCS#8 PEM.
fn ec_public_of(pem: &[u8], algorithm: jsonwebtoken::Algorithm) -> Result<Vec<u8>, String> {
    use ring::signature::KeyPair as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let bad = |e: String| format!("auth: cannot read the EC private key (PKCS#8 PEM): {e}");
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(e.to_string()))?;
    let PrivateKeyDer::Pkcs8(k) = &der else {
        return Err(bad("convert it with openssl pkcs8 -topk8 -nocrypt".into()));
    };
    let alg = match algorithm {
        jsonwebtoken::Algorithm::ES384 => &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    };
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, k.secret_pkcs8_der(), &rng)
        .map_err(|e| bad(e.to_string()))?;
    Ok(pair.public_key().as_ref().to_vec())
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
        let t = Tokens::simple(Duration::from_secs(300));
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
        let t = Tokens::simple(Duration::from_secs(1));
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
        assert_eq!(t.info("abc.42", 7).map(|c| (c.user, c.revision)), Some(("u".to_string(), 7)));
        assert_eq!(t.info("abc.43", 7), None);
        s.apply(&AuthWrite::UserChangePassword { name: "u".into(), hash: "h2".into() }, 2, &t).unwrap();
        assert_eq!(t.info("abc.42", 7), None, "a new password ends the user's tokens");
        let short = Tokens::simple(Duration::from_millis(0));
        let token = short.assign("t", 1, "u", 1).unwrap();
        assert_eq!(short.info(&token, 1), None);
        s.apply(&AuthWrite::UserAdd { name: "np".into(), hash: None }, 3, &t).unwrap();
        let w = AuthWrite::Authenticate { name: "np".into(), token_prefix: "abc".into() };
        assert_eq!(s.apply(&w, 4, &t), Err(NodeError::AuthFailed), "no-password users have no token");
        let p = token_prefix().unwrap();
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphabetic()));
    }

    fn es256_files(dir: &std::path::Path, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (private, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
        std::fs::write(&private, key.serialize_pem()).unwrap();
        std::fs::write(&public, key.public_key_pem()).unwrap();
        (private.display().to_string(), public.display().to_string())
    }

    fn jwt(options: &[(&str, &str)]) -> Result<JwtKeys, String> {
        JwtKeys::load(&options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn jwts_carry_the_user_and_revision_and_are_checked_as_etcds() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = es256_files(dir.path(), "a");
        let (other_private, _) = es256_files(dir.path(), "b");
        let both =
            jwt(&[("sign-method", "ES256"), ("priv-key", &private), ("pub-key", &public), ("ttl", "10m")])
                .unwrap();
        let tokens = Tokens::new(TokenConfig::Jwt(both));
        let token = tokens.assign("", 9, "alice", 4).unwrap();
        assert_eq!(token.matches('.').count(), 2, "a JWT: {token}");
        assert_eq!(
            tokens.info(&token, 99),
            Some(Caller { user: "alice".into(), revision: 4 }),
            "the token's revision"
        );
        assert_eq!(tokens.info("abc.9", 1), None);
        // Only the private key: the public half is derived.
        let private_only =
            Tokens::new(TokenConfig::Jwt(jwt(&[("sign-method", "ES256"), ("priv-key", &private)]).unwrap()));
        assert_eq!(private_only.info(&token, 1).map(|c| c.user), Some("alice".into()));
        // Only the public key: checks, cannot issue.
        let verify_only =
            Tokens::new(TokenConfig::Jwt(jwt(&[("sign-method", "ES256"), ("pub-key", &public)]).unwrap()));
        assert!(verify_only.info(&token, 1).is_some());
        assert_eq!(verify_only.assign("", 1, "bob", 1), Err(NodeError::VerifyOnly));
        // Another key, another algorithm, or expired: refused.
        let other = Tokens::new(TokenConfig::Jwt(
            jwt(&[("sign-method", "ES256"), ("priv-key", &other_private)]).unwrap(),
        ));
        assert_eq!(other.info(&token, 1), None);
        let hs =
            Tokens::new(TokenConfig::Jwt(jwt(&[("sign-method", "HS256"), ("priv-key", &public)]).unwrap()));
        assert_eq!(hs.info(&token, 1), None);
        let hs_token = hs.assign("", 1, "carol", 2).unwrap();
        assert_eq!(hs.info(&hs_token, 1).map(|c| c.user), Some("carol".into()));
        let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&private).unwrap()).unwrap();
        let claims = Claims { username: "alice".into(), revision: 4, exp: 1_000 };
        let expired =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &key)
                .unwrap();
        assert_eq!(tokens.info(&expired, 1), None);
        // etcd's errors for bad options.
        assert_eq!(
            jwt(&[("sign-method", "ES256"), ("priv-key", &other_private), ("pub-key", &public)])
                .err()
                .as_deref(),
            Some("auth: public and private keys don't match")
        );
        assert_eq!(
            jwt(&[("sign-method", "XX1")]).err().as_deref(),
            Some("auth: invalid auth options (sign-method \"XX1\")")
        );
        assert_eq!(jwt(&[("sign-method", "RS256")]).err().as_deref(), Some("auth: missing key data"));
        assert!(jwt(&[("sign-method", "RS256"), ("priv-key", &private)]).is_err(), "an EC key for RSA");
        assert!(jwt(&[("sign-method", "ES256"), ("priv-key", &private), ("ttl", "soon")]).is_err());
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
