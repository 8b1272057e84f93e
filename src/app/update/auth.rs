//! `update` for the users and roles view: its commands, its keys, and what the Auth API answers.
//! Changes go through the member maintenance dialog (`MemberOp::Auth`): a confirmation naming
//! what changes and the etcdctl command that does the same, then the answer.

use crate::app::action::Action;
use crate::app::auth::{AuthListing, AuthOp, Parsed, Row, Secret};
use crate::app::effect::Effect;
use crate::app::members::{MemberDialog, MemberOp};
use crate::app::modal::Modal;
use crate::app::note::Note;
use crate::app::state::{InputLine, Prompt, State, View};

/// The commands this view owns.
pub const COMMANDS: &[&str] =
    &["auth", "users", "roles", "user", "role", "grant-role", "revoke-role", "grant", "revoke"];

/// Opens the view and asks for the listing.
pub fn open(state: &mut State) -> Vec<Effect> {
    state.view = View::Auth;
    load(state)
}

/// Asks for the listing again; replies to earlier requests are then dropped.
pub fn load(state: &mut State) -> Vec<Effect> {
    state.auth.request += 1;
    vec![Effect::LoadAuth { request: state.auth.request, user: state.user.clone() }]
}

/// `:auth` and the change commands.
pub fn command(state: &mut State, name: &str, arg: &str) -> Vec<Effect> {
    if matches!(name, "auth" | "users" | "roles") {
        return open(state);
    }
    let args: Vec<&str> = arg.split_whitespace().map(|w| if w == "\"\"" { "" } else { w }).collect();
    match crate::app::auth::parse(name, &args) {
        Err(e) => {
            state.notice = Some(format!("✗ {e}"));
            Vec::new()
        }
        Ok(parsed) => {
            if let Some(why) = &state.read_only {
                state.notice = Some(format!("read-only ({why}): users and roles are not changed"));
                return Vec::new();
            }
            match parsed {
                Parsed::NeedsPassword { name } => {
                    state.input =
                        Some(InputLine { prompt: Prompt::NewPassword { name }, text: String::new() });
                    Vec::new()
                }
                Parsed::Op(op) => confirm(state, op),
            }
        }
    }
}

/// The password of a user being added was typed (empty: none).
pub fn on_password(state: &mut State, name: String, text: String) -> Vec<Effect> {
    let password = (!text.is_empty()).then_some(Secret(text));
    confirm(state, AuthOp::UserAdd { name, password })
}

fn confirm(state: &mut State, op: AuthOp) -> Vec<Effect> {
    let notes = op
        .warnings(state.user.as_deref())
        .into_iter()
        .map(|(text, loud)| Note { text, loud })
        .collect::<Vec<_>>();
    // Taking away what the signed-in user stands on, or every key, needs a deliberate yes.
    let deliberate = notes.iter().any(|n| n.loud);
    state.modal = Some(Modal::Member(MemberDialog::Confirm { op: MemberOp::Auth(op), notes, deliberate }));
    Vec::new()
}

/// Keys in the view: move, refresh, delete the selected user or role, start an add.
pub fn on_action(state: &mut State, action: Action) -> Option<Vec<Effect>> {
    match action {
        Action::Up => state.auth.step(-1),
        Action::Down => state.auth.step(1),
        Action::Top => state.auth.selected = 0,
        Action::Bottom => state.auth.step(isize::MAX / 2),
        Action::Refresh => return Some(load(state)),
        Action::Back => state.view = View::Members,
        Action::New => {
            state.input = Some(InputLine { prompt: Prompt::Command, text: "user add ".into() });
        }
        Action::Delete => {
            let op = match state.auth.selected_row() {
                Some(Row::User(name)) => AuthOp::UserDelete { name },
                Some(Row::Role(name)) => AuthOp::RoleDelete { name },
                None => {
                    state.notice = Some("nothing selected".into());
                    return Some(Vec::new());
                }
            };
            if let Some(why) = &state.read_only {
                state.notice = Some(format!("read-only ({why}): users and roles are not changed"));
                return Some(Vec::new());
            }
            return Some(confirm(state, op));
        }
        _ => return None,
    }
    Some(Vec::new())
}

/// What the Auth API listed. For a user without the root role, the key browser's first listing
/// starts at the first range its roles may read.
pub fn on_listing(state: &mut State, request: u64, result: Result<AuthListing, String>) -> Vec<Effect> {
    if request != state.auth.request {
        return Vec::new();
    }
    state.auth.listing = Some(result);
    let n = state.auth.rows().len();
    state.auth.selected = state.auth.selected.min(n.saturating_sub(1));
    let Some(user) = state.user.clone() else { return Vec::new() };
    let roles = state.auth.roles_of(&user);
    if roles.iter().any(|r| r == "root") {
        return Vec::new();
    }
    let starts = state.auth.readable_starts(&roles);
    // Every key readable: nothing to steer.
    let Some(first) = starts.first().cloned().filter(|f| !f.is_empty()) else { return Vec::new() };
    state.keys_start = first;
    if !state.keys.started {
        let names: Vec<String> = starts.iter().map(|s| crate::app::value_format::display_bytes(s)).collect();
        state.notice =
            Some(format!("{user} may read from: {} (:keys <prefix> to go there)", names.join(", ")));
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::auth::{PermKind, Permission};
    use crate::app::fixtures;
    use crate::app::input::{Input, Typed};
    use crate::app::msg::Msg;
    use crate::app::update::update;

    fn run(state: &mut State, line: &str) -> Vec<Effect> {
        update(state, Input::Action(Action::Command));
        for c in line.chars() {
            update(state, Input::Typed(Typed::Char(c)));
        }
        update(state, Input::Typed(Typed::Enter))
    }

    #[test]
    fn a_user_add_asks_a_masked_password_then_confirms_and_runs() {
        let mut state = fixtures::healthy();
        let effects = run(&mut state, "auth");
        assert_eq!(state.view, View::Auth);
        assert!(matches!(effects[..], [Effect::LoadAuth { .. }]));
        run(&mut state, "user add alice");
        assert!(
            matches!(&state.input, Some(InputLine { prompt: Prompt::NewPassword { name }, .. }) if name == "alice")
        );
        for c in "s3cret".chars() {
            update(&mut state, Input::Typed(Typed::Char(c)));
        }
        assert!(!format!("{state:?}").contains("s3cret"), "a password being typed never prints");
        update(&mut state, Input::Typed(Typed::Enter));
        let Some(MemberDialog::Confirm { op, .. }) = state.member_dialog() else {
            panic!("{:?}", state.member_dialog())
        };
        assert!(!format!("{op:?} {}", op.etcdctl(&state.endpoints)).contains("s3cret"));
        let effects = update(&mut state, Input::Typed(Typed::Char('y')));
        let [Effect::Member { request, op: MemberOp::Auth(AuthOp::UserAdd { name, password: Some(p) }) }] =
            &effects[..]
        else {
            panic!("{effects:?}")
        };
        assert_eq!((name.as_str(), p.0.as_str()), ("alice", "s3cret"));
        // Done: the listing is asked for again.
        let request = *request;
        let effects = update(
            &mut state,
            Input::Msg(Msg::Member { request, result: Ok(crate::app::members::MemberOutcome::Done) }),
        );
        assert!(effects.iter().any(|e| matches!(e, Effect::LoadAuth { .. })), "{effects:?}");
    }

    #[test]
    fn read_only_refuses_changes_and_bad_commands_say_why() {
        let mut state = fixtures::healthy();
        state.read_only = Some("--read-only".into());
        assert!(run(&mut state, "role add r").is_empty());
        assert!(state.member_dialog().is_none());
        assert!(state.notice.as_deref().unwrap_or_default().contains("read-only"));
        run(&mut state, "grant r everything k");
        assert!(state.notice.as_deref().unwrap_or_default().contains("read, write or readwrite"));
    }

    #[test]
    fn a_limited_users_key_browser_starts_where_its_roles_may_read() {
        let mut state = fixtures::healthy();
        state.user = Some("ops".into());
        let listing = AuthListing {
            users: Err("etcdserver: permission denied".into()),
            roles: Ok(vec![(
                "app".into(),
                Ok(vec![Permission {
                    kind: PermKind::Read,
                    key: b"/app/".to_vec(),
                    range_end: b"/app0".to_vec(),
                }]),
            )]),
            own_roles: Some(vec!["app".into()]),
        };
        let effects = load(&mut state);
        let [Effect::LoadAuth { request, user: Some(u) }] = &effects[..] else { panic!() };
        assert_eq!(u, "ops");
        let request = *request;
        update(&mut state, Input::Msg(Msg::Auth { request, result: Ok(listing) }));
        assert_eq!(state.keys_start, b"/app/".to_vec());
        assert!(state.notice.as_deref().unwrap_or_default().contains("/app/"));
        let effects = update(&mut state, Input::Action(Action::SwitchView));
        assert!(
            matches!(&effects[..], [Effect::Keys(crate::app::keys::KeyRequest::List { prefix, .. })] if prefix == b"/app/"),
            "{effects:?}"
        );
    }
}
