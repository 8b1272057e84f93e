//! Key bindings: the defaults embedded from assets/keymap.toml, with the user's file laid over them.
//! Keys are described without crossterm so the app layer stays terminal-free; the UI translates.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::app::action::{Action, ACTIONS};
use crate::app::config_file;

pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// A key as the keymap names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Tab,
    Backspace,
    F(u8),
}

/// A key with its modifiers. Shift is part of the character ("G"), never a separate flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub key: Key,
    pub ctrl: bool,
    pub alt: bool,
}

impl KeyChord {
    pub fn plain(key: Key) -> Self {
        Self { key, ctrl: false, alt: false }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rest = text;
        let (mut ctrl, mut alt) = (false, false);
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let key = match (chars.next(), chars.next()) {
            (Some(c), None) => Key::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" => Key::Enter,
                "esc" => Key::Esc,
                "up" => Key::Up,
                "down" => Key::Down,
                "left" => Key::Left,
                "right" => Key::Right,
                "home" => Key::Home,
                "end" => Key::End,
                "pageup" => Key::PageUp,
                "pagedown" => Key::PageDown,
                "tab" => Key::Tab,
                "backspace" => Key::Backspace,
                "space" => Key::Char(' '),
                f if f.starts_with('f') && f.len() > 1 => match f[1..].parse::<u8>() {
                    Ok(n) if (1..=12).contains(&n) => Key::F(n),
                    _ => return Err(format!("unknown key {text:?}")),
                },
                _ => return Err(format!("unknown key {text:?}")),
            },
        };
        Ok(Self { key, ctrl, alt })
    }
}

impl std::fmt::Display for KeyChord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.key {
            Key::Char(' ') => f.write_str("space"),
            Key::Char(c) => write!(f, "{c}"),
            Key::F(n) => write!(f, "f{n}"),
            other => f.write_str(&format!("{other:?}").to_lowercase()),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// Key → action, plus each action's keys in file order for the help overlay.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<KeyChord, Action>,
    keys: BTreeMap<&'static str, Vec<KeyChord>>,
}

impl Keymap {
    /// The embedded defaults.
    pub fn defaults() -> Self {
        match Self::from_layers(&[("assets/keymap.toml", DEFAULT_KEYMAP)]) {
            Ok(map) => map,
            // The embedded file is checked by a unit test; an empty map would still let Ctrl-C quit.
            Err(_) => Self { by_key: HashMap::new(), keys: BTreeMap::new() },
        }
    }

    /// The defaults with the user's file (if it exists) laid over them.
    pub fn load(user_file: Option<&Path>) -> Result<Self, String> {
        let layers = config_file::layers(("assets/keymap.toml", DEFAULT_KEYMAP), user_file)?;
        Self::from_layers(&config_file::as_refs(&layers))
    }

    /// Each layer's actions replace the keys of the same action in the layers below.
    pub fn from_layers(layers: &[(&str, &str)]) -> Result<Self, String> {
        let mut keys: BTreeMap<&'static str, Vec<KeyChord>> = BTreeMap::new();
        for (source, text) in layers {
            let file: KeymapFile = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
            for (name, list) in file.keys {
                let action = Action::from_name(&name).ok_or_else(|| {
                    let known: Vec<&str> = ACTIONS.iter().map(|i| i.name).collect();
                    format!("{source}: unknown action {name:?} (actions: {})", known.join(", "))
                })?;
                let chords = list
                    .iter()
                    .map(|k| KeyChord::parse(k).map_err(|e| format!("{source}: action {name:?}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                keys.insert(action.info().name, chords);
            }
        }
        let mut by_key = HashMap::new();
        for (name, chords) in &keys {
            let action = Action::from_name(name).unwrap_or(Action::Help);
            for chord in chords {
                if let Some(other) = by_key.insert(*chord, action) {
                    if other != action {
                        return Err(format!(
                            "key {chord} is bound to both {:?} and {:?}",
                            other.info().name,
                            name
                        ));
                    }
                }
            }
        }
        Ok(Self { by_key, keys })
    }

    pub fn action(&self, chord: &KeyChord) -> Option<Action> {
        self.by_key.get(chord).copied()
    }

    /// The keys bound to an action, for help and hints.
    pub fn keys_for(&self, action: Action) -> &[KeyChord] {
        self.keys.get(action.info().name).map_or(&[], Vec::as_slice)
    }

    /// "k/up" style text for hints.
    pub fn describe(&self, action: Action) -> String {
        let keys = self.keys_for(action);
        if keys.is_empty() {
            return "unbound".into();
        }
        keys.iter().map(ToString::to_string).collect::<Vec<_>>().join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse_and_bind_every_action() {
        let map = Keymap::from_layers(&[("defaults", DEFAULT_KEYMAP)]).expect("defaults parse");
        for info in ACTIONS {
            assert!(!map.keys_for(info.action).is_empty(), "{} has no key", info.name);
        }
        assert_eq!(map.action(&KeyChord::plain(Key::Char('q'))), Some(Action::Quit));
        assert_eq!(map.action(&KeyChord::plain(Key::Char('G'))), Some(Action::Bottom));
        assert_eq!(
            map.action(&KeyChord { key: Key::Char('r'), ctrl: true, alt: false }),
            Some(Action::Refresh)
        );
    }

    #[test]
    fn user_layer_replaces_an_actions_keys() {
        let user = "[keys]\nquit = [\"Q\"]\n";
        let map = Keymap::from_layers(&[("d", DEFAULT_KEYMAP), ("user", user)]).unwrap();
        assert_eq!(map.action(&KeyChord::plain(Key::Char('Q'))), Some(Action::Quit));
        assert_eq!(map.action(&KeyChord::plain(Key::Char('q'))), None);
        assert_eq!(map.describe(Action::Up), "up/k");
    }

    #[test]
    fn mistakes_are_named() {
        let err = Keymap::from_layers(&[("user.toml", "[keys]\nfly = [\"f\"]\n")]).unwrap_err();
        assert!(err.starts_with("user.toml: unknown action \"fly\""), "{err}");
        let err = Keymap::from_layers(&[("u", "[keys]\nquit = [\"hyper-q\"]\n")]).unwrap_err();
        assert_eq!(err, "u: action \"quit\": unknown key \"hyper-q\"");
        let err = Keymap::from_layers(&[("u", "[keys]\nquit = [\"Q\"]\nhelp = [\"Q\"]\n")]).unwrap_err();
        assert!(err.contains("bound to both"), "{err}");
        let err = Keymap::from_layers(&[("u", "[keyz]\n")]).unwrap_err();
        assert!(err.starts_with("u: "), "{err}");
    }

    #[test]
    fn chords_round_trip() {
        for text in ["q", "G", "ctrl-r", "alt-x", "enter", "f5", "space", "pagedown"] {
            assert_eq!(KeyChord::parse(text).unwrap().to_string(), text);
        }
    }
}
