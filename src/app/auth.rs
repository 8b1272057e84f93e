//! The users and roles view: what etcd's Auth API lists (users with their roles, roles with their
//! key permissions as ranges), the changes an operator makes from it (`:user add`, `:role add`,
//! `:grant-role`, `:grant`, ...) each through a confirmed dialog, and where a limited user's key
//! browser starts (the ranges its roles may read).
//!
//! Passwords are typed at a masked prompt, held only in the change waiting for its confirmation
//! (as a `Secret`, which never prints), and sent to etcd; nothing writes them anywhere.

use crate::app::value_format::display_bytes;

/// A password on its way to etcd: compares and orders as its text, but never prints.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// authpb.Permission.Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PermKind {
    Read,
    Write,
    ReadWrite,
}

impl PermKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "read" => Some(PermKind::Read),
            "write" => Some(PermKind::Write),
            "readwrite" => Some(PermKind::ReadWrite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PermKind::Read => "read",
            PermKind::Write => "write",
            PermKind::ReadWrite => "readwrite",
        }
    }

    pub fn reads(self) -> bool {
        matches!(self, PermKind::Read | PermKind::ReadWrite)
    }
}

/// A change to users and roles.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthOp {
    /// `password` None: a user without one (it authenticates by client certificate only).
    UserAdd {
        name: String,
        password: Option<Secret>,
    },
    UserDelete {
        name: String,
    },
    RoleAdd {
        name: String,
    },
    RoleDelete {
        name: String,
    },
    GrantRole {
        user: String,
        role: String,
    },
    RevokeRole {
        user: String,
        role: String,
    },
    GrantPermission {
        role: String,
        kind: PermKind,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
    RevokePermission {
        role: String,
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
}

/// What a typed command asks for: a change, or a user add that still needs its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Op(AuthOp),
    NeedsPassword { name: String },
}

/// The key and range end for etcdctl's forms: `--prefix`, `--from-key`, an explicit end, or one
/// key. The empty key with `--prefix` or `--from-key` is every key: "\0" to the end, as etcd's
/// clients send it (an empty key would grant nothing).
fn range(key: &str, rest: &[&str]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let key = key.as_bytes().to_vec();
    let end = match rest {
        [] => return Ok((key, Vec::new())),
        ["--prefix"] => crate::app::keys::prefix_end(&key),
        ["--from-key"] => vec![0],
        [end] if !end.starts_with("--") => end.as_bytes().to_vec(),
        _ => {
            return Err(format!("after the key: an end key, --prefix or --from-key (got {})", rest.join(" ")))
        }
    };
    if key.is_empty() && end == [0] {
        return Ok((vec![0], vec![0]));
    }
    Ok((key, end))
}

pub const USAGE: &str = ":user add|del NAME · :role add|del NAME · :grant-role USER ROLE · :revoke-role USER ROLE · :grant ROLE read|write|readwrite KEY [END|--prefix|--from-key] · :revoke ROLE KEY [END|--prefix|--from-key]";

/// Reads an auth command (`name` is the command, `args` what follows it).
pub fn parse(name: &str, args: &[&str]) -> Result<Parsed, String> {
    let one = |what: &str| -> Result<String, String> {
        match args {
            [_, n] if !n.is_empty() => Ok(n.to_string()),
            _ => Err(format!("usage: :{name} {what} NAME")),
        }
    };
    match (name, args.first().copied()) {
        ("user", Some("add")) => Ok(Parsed::NeedsPassword { name: one("add")? }),
        ("user", Some("del" | "delete")) => Ok(Parsed::Op(AuthOp::UserDelete { name: one("del")? })),
        ("role", Some("add")) => Ok(Parsed::Op(AuthOp::RoleAdd { name: one("add")? })),
        ("role", Some("del" | "delete")) => Ok(Parsed::Op(AuthOp::RoleDelete { name: one("del")? })),
        ("grant-role" | "revoke-role", _) => {
            let [user, role] = args else { return Err(format!("usage: :{name} USER ROLE")) };
            let (user, role) = (user.to_string(), role.to_string());
            Ok(Parsed::Op(if name == "grant-role" {
                AuthOp::GrantRole { user, role }
            } else {
                AuthOp::RevokeRole { user, role }
            }))
        }
        ("grant", _) => {
            let [role, kind, key, rest @ ..] = args else {
                return Err("usage: :grant ROLE read|write|readwrite KEY [END|--prefix|--from-key]".into());
            };
            let kind = PermKind::parse(kind)
                .ok_or_else(|| format!("permission type {kind:?}: read, write or readwrite"))?;
            let (key, range_end) = range(key, rest)?;
            Ok(Parsed::Op(AuthOp::GrantPermission { role: role.to_string(), kind, key, range_end }))
        }
        ("revoke", _) => {
            let [role, key, rest @ ..] = args else {
                return Err("usage: :revoke ROLE KEY [END|--prefix|--from-key]".into());
            };
            let (key, range_end) = range(key, rest)?;
            Ok(Parsed::Op(AuthOp::RevokePermission { role: role.to_string(), key, range_end }))
        }
        _ => Err(format!("usage: {USAGE}")),
    }
}

/// A permission's keys as etcdctl's `role get` prints them: `k`, `[a, c)`, `[p/, p0) (prefix p/)`,
/// `[x, <open ended>`.
pub fn range_label(key: &[u8], range_end: &[u8]) -> String {
    if range_end.is_empty() {
        return display_bytes(key);
    }
    if range_end == [0] {
        return format!("[{}, <open ended>", display_bytes(key));
    }
    let label = format!("[{}, {})", display_bytes(key), display_bytes(range_end));
    if crate::app::keys::prefix_end(key) == range_end {
        format!("{label} (prefix {})", display_bytes(key))
    } else {
        label
    }
}

/// The etcdctl flags naming a key range (for the command a dialog shows).
fn range_args(key: &[u8], range_end: &[u8]) -> String {
    let k = crate::app::edit::shell_quote(key);
    if range_end.is_empty() {
        k
    } else if range_end == [0] {
        format!("{k} --from-key")
    } else if crate::app::keys::prefix_end(key) == range_end {
        format!("{k} --prefix")
    } else {
        format!("{k} {}", crate::app::edit::shell_quote(range_end))
    }
}

impl AuthOp {
    pub fn describe(&self) -> String {
        match self {
            AuthOp::UserAdd { name, password: Some(_) } => format!("add user {name}"),
            AuthOp::UserAdd { name, password: None } => format!("add user {name} without a password"),
            AuthOp::UserDelete { name } => format!("delete user {name}"),
            AuthOp::RoleAdd { name } => format!("add role {name}"),
            AuthOp::RoleDelete { name } => format!("delete role {name}"),
            AuthOp::GrantRole { user, role } => format!("grant role {role} to user {user}"),
            AuthOp::RevokeRole { user, role } => format!("revoke role {role} from user {user}"),
            AuthOp::GrantPermission { role, kind, key, range_end } => {
                format!("grant {} on {} to role {role}", kind.name(), range_label(key, range_end))
            }
            AuthOp::RevokePermission { role, key, range_end } => {
                format!("revoke role {role}'s permission on {}", range_label(key, range_end))
            }
        }
    }

    /// The etcdctl command that does the same (a password is never shown: etcdctl asks for it).
    pub fn etcdctl(&self) -> String {
        match self {
            AuthOp::UserAdd { name, password: Some(_) } => format!("etcdctl user add {name}"),
            AuthOp::UserAdd { name, password: None } => format!("etcdctl user add {name} --no-password"),
            AuthOp::UserDelete { name } => format!("etcdctl user delete {name}"),
            AuthOp::RoleAdd { name } => format!("etcdctl role add {name}"),
            AuthOp::RoleDelete { name } => format!("etcdctl role delete {name}"),
            AuthOp::GrantRole { user, role } => format!("etcdctl user grant-role {user} {role}"),
            AuthOp::RevokeRole { user, role } => format!("etcdctl user revoke-role {user} {role}"),
            AuthOp::GrantPermission { role, kind, key, range_end } => {
                format!("etcdctl role grant-permission {role} {} {}", kind.name(), range_args(key, range_end))
            }
            AuthOp::RevokePermission { role, key, range_end } => {
                format!("etcdctl role revoke-permission {role} {}", range_args(key, range_end))
            }
        }
    }

    /// What the confirmation says besides the change itself: (text, loud).
    pub fn warnings(&self, signed_in_as: Option<&str>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        match self {
            AuthOp::UserDelete { name } | AuthOp::RevokeRole { user: name, .. }
                if Some(name.as_str()) == signed_in_as =>
            {
                out.push((format!("{name} is the user this console is signed in as"), true));
            }
            AuthOp::RoleDelete { name } => {
                out.push((
                    format!("every user with role {name} loses it, and what it granted, at once"),
                    true,
                ));
            }
            AuthOp::UserAdd { password: None, .. } => {
                out.push((
                    "no password: the user can sign in only with a client certificate whose CN is its name"
                        .into(),
                    false,
                ));
            }
            _ => {}
        }
        if matches!(self, AuthOp::GrantPermission { key, range_end, .. } if key == &[0] && range_end == &[0])
        {
            out.push(("this grants every key".into(), true));
        }
        out
    }
}

/// A permission as the view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub kind: PermKind,
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
}

/// A user and its roles, or why they could not be read.
pub type UserEntry = (String, Result<Vec<String>, String>);
/// A role and its permissions, or why they could not be read.
pub type RoleEntry = (String, Result<Vec<Permission>, String>);

/// What the Auth API showed the signed-in user. A list it may not read is the error etcd gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthListing {
    /// Users and their roles (each user's own lookup may fail on its own).
    pub users: Result<Vec<UserEntry>, String>,
    /// Roles and their permissions.
    pub roles: Result<Vec<RoleEntry>, String>,
    /// The signed-in user's own roles, when the lists were refused but etcd lets a user read itself.
    pub own_roles: Option<Vec<String>>,
}

/// The view's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthView {
    /// The request in flight; replies to older ones are dropped.
    pub request: u64,
    pub listing: Option<Result<AuthListing, String>>,
    /// Index into `rows()`.
    pub selected: usize,
}

/// One selectable row of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    User(String),
    Role(String),
}

impl AuthView {
    pub fn rows(&self) -> Vec<Row> {
        let Some(Ok(listing)) = &self.listing else { return Vec::new() };
        let users =
            listing.users.as_ref().map(|u| u.iter().map(|(n, _)| Row::User(n.clone())).collect::<Vec<_>>());
        let roles =
            listing.roles.as_ref().map(|r| r.iter().map(|(n, _)| Row::Role(n.clone())).collect::<Vec<_>>());
        users.unwrap_or_default().into_iter().chain(roles.unwrap_or_default()).collect()
    }

    pub fn selected_row(&self) -> Option<Row> {
        self.rows().get(self.selected).cloned()
    }

    pub fn step(&mut self, delta: isize) {
        let n = self.rows().len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = (self.selected as isize + delta).clamp(0, n as isize - 1) as usize;
    }

    /// The prefixes a user without the root role may list, from what its roles may read: a prefix
    /// grant's prefix, a from-key grant's key, a range's start when the range holds that whole
    /// prefix; the empty prefix when a grant covers every key. Single keys are not listings.
    pub fn readable_starts(&self, roles_of_user: &[String]) -> Vec<Vec<u8>> {
        let Some(Ok(listing)) = &self.listing else { return Vec::new() };
        let Ok(roles) = &listing.roles else { return Vec::new() };
        let start = |p: &Permission| -> Option<Vec<u8>> {
            match (p.key.as_slice(), p.range_end.as_slice()) {
                (_, []) => None,
                ([0] | [], [0]) => Some(Vec::new()),
                (key, [0]) => Some(key.to_vec()),
                (key, end) if crate::app::keys::prefix_end(key).as_slice() <= end => Some(key.to_vec()),
                _ => None,
            }
        };
        let mut out: Vec<Vec<u8>> = roles
            .iter()
            .filter(|(name, _)| roles_of_user.contains(name))
            .filter_map(|(_, perms)| perms.as_ref().ok())
            .flatten()
            .filter(|p| p.kind.reads())
            .filter_map(start)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The roles of `user`, as the listing knows them.
    pub fn roles_of(&self, user: &str) -> Vec<String> {
        let Some(Ok(listing)) = &self.listing else { return Vec::new() };
        if let Ok(users) = &listing.users {
            if let Some((_, Ok(roles))) = users.iter().find(|(n, _)| n == user) {
                return roles.clone();
            }
        }
        listing.own_roles.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(line: &str) -> Result<Parsed, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse(words[0], &words[1..])
    }

    #[test]
    fn commands_read_as_etcdctls_forms() {
        assert_eq!(op("user add alice"), Ok(Parsed::NeedsPassword { name: "alice".into() }));
        assert_eq!(op("user del alice"), Ok(Parsed::Op(AuthOp::UserDelete { name: "alice".into() })));
        assert_eq!(op("role add r"), Ok(Parsed::Op(AuthOp::RoleAdd { name: "r".into() })));
        assert_eq!(
            op("grant-role alice r"),
            Ok(Parsed::Op(AuthOp::GrantRole { user: "alice".into(), role: "r".into() }))
        );
        let Ok(Parsed::Op(g)) = op("grant r readwrite /app/ --prefix") else { panic!() };
        assert_eq!(
            g,
            AuthOp::GrantPermission {
                role: "r".into(),
                kind: PermKind::ReadWrite,
                key: b"/app/".to_vec(),
                range_end: b"/app0".to_vec()
            }
        );
        assert_eq!(g.etcdctl(), "etcdctl role grant-permission r readwrite /app/ --prefix");
        assert_eq!(g.describe(), "grant readwrite on [/app/, /app0) (prefix /app/) to role r");
        let Ok(Parsed::Op(g)) = op("grant r read x --from-key") else { panic!() };
        assert_eq!(g.describe(), "grant read on [x, <open ended> to role r");
        let Ok(Parsed::Op(g)) = op("revoke r a c") else { panic!() };
        assert_eq!(
            g,
            AuthOp::RevokePermission { role: "r".into(), key: b"a".to_vec(), range_end: b"c".to_vec() }
        );
        assert_eq!(g.etcdctl(), "etcdctl role revoke-permission r a c");
        assert!(op("grant r admin k").unwrap_err().contains("read, write or readwrite"));
        assert!(op("grant r read k --sideways").is_err());
        assert!(op("user add").unwrap_err().contains("usage"));
        assert!(op("user frobnicate x").unwrap_err().contains(":user add"));
        let every = parse("grant", &["r", "read", "", "--prefix"]);
        let Ok(Parsed::Op(every)) = every else { panic!("{every:?}") };
        assert_eq!(
            every,
            AuthOp::GrantPermission {
                role: "r".into(),
                kind: PermKind::Read,
                key: vec![0],
                range_end: vec![0]
            }
        );
        assert!(every.warnings(None).iter().any(|(w, loud)| *loud && w.contains("every key")));
    }

    #[test]
    fn passwords_never_print() {
        let add = AuthOp::UserAdd { name: "alice".into(), password: Some(Secret("hunter2".into())) };
        for text in [format!("{add:?}"), add.describe(), add.etcdctl()] {
            assert!(!text.contains("hunter2"), "{text}");
        }
        let none = AuthOp::UserAdd { name: "cert".into(), password: None };
        assert_eq!(none.etcdctl(), "etcdctl user add cert --no-password");
        assert!(none.warnings(None)[0].0.contains("client certificate"));
        let del = AuthOp::UserDelete { name: "ops".into() };
        assert!(del.warnings(Some("ops"))[0].1, "deleting oneself is loud");
    }

    #[test]
    fn rows_and_readable_starts_come_from_the_listing() {
        let perm = |kind, key: &str, end: &str| Permission { kind, key: key.into(), range_end: end.into() };
        let listing = AuthListing {
            users: Err("etcdserver: permission denied".into()),
            roles: Ok(vec![
                (
                    "app".into(),
                    Ok(vec![perm(PermKind::Read, "/app/", "/app0"), perm(PermKind::Write, "/tmp/", "/tmp0")]),
                ),
                (
                    "cfg".into(),
                    Ok(vec![perm(PermKind::ReadWrite, "/cfg", ""), perm(PermKind::Read, "/log/", "\0")]),
                ),
                ("other".into(), Ok(vec![perm(PermKind::Read, "/secret/", "/secret0")])),
            ]),
            own_roles: Some(vec!["app".into(), "cfg".into()]),
        };
        let mut view = AuthView { request: 1, listing: Some(Ok(listing)), selected: 0 };
        assert_eq!(view.rows().len(), 3, "the users list was refused: roles only");
        view.step(5);
        assert_eq!(view.selected_row(), Some(Row::Role("other".into())));
        let roles = view.roles_of("me");
        assert_eq!(
            view.readable_starts(&roles),
            vec![b"/app/".to_vec(), b"/log/".to_vec()],
            "no single keys"
        );
        let every = Permission { kind: PermKind::Read, key: vec![0], range_end: vec![0] };
        let narrow = Permission { kind: PermKind::Read, key: b"/a/x".to_vec(), range_end: b"/a/y".to_vec() };
        let wide = Permission { kind: PermKind::Read, key: b"/b/".to_vec(), range_end: b"/c".to_vec() };
        let only = AuthView {
            request: 1,
            listing: Some(Ok(AuthListing {
                users: Ok(Vec::new()),
                roles: Ok(vec![("r".into(), Ok(vec![every, narrow, wide]))]),
                own_roles: None,
            })),
            selected: 0,
        };
        assert_eq!(only.readable_starts(&["r".into()]), vec![Vec::new(), b"/a/x".to_vec(), b"/b/".to_vec()]);
        assert_eq!(range_label(b"/cfg", b""), "/cfg");
    }
}
