//! Colours: the defaults embedded from assets/theme.toml, with the user's file laid over them.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::Color;

use crate::app::config_file;

pub const DEFAULT_THEME: &str = include_str!("../../assets/theme.toml");

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub border: Color,
    pub title: Color,
    pub label: Color,
    pub text: Color,
    pub leader: Color,
    pub healthy: Color,
    pub unhealthy: Color,
    pub down: Color,
    pub learner: Color,
    pub alarm: Color,
    pub selected_bg: Color,
    pub hint: Color,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    colors: BTreeMap<String, String>,
}

impl Default for Theme {
    fn default() -> Self {
        Self::from_layers(&[("assets/theme.toml", DEFAULT_THEME)]).unwrap_or(Self {
            border: Color::DarkGray,
            title: Color::Cyan,
            label: Color::Gray,
            text: Color::Reset,
            leader: Color::Green,
            healthy: Color::Green,
            unhealthy: Color::Yellow,
            down: Color::Red,
            learner: Color::Cyan,
            alarm: Color::Red,
            selected_bg: Color::DarkGray,
            hint: Color::DarkGray,
        })
    }
}

impl Theme {
    pub fn load(user_file: Option<&Path>) -> Result<Self, String> {
        let layers = config_file::layers(("assets/theme.toml", DEFAULT_THEME), user_file)?;
        Self::from_layers(&config_file::as_refs(&layers))
    }

    pub fn from_layers(layers: &[(&str, &str)]) -> Result<Self, String> {
        let mut colors: BTreeMap<String, Color> = BTreeMap::new();
        for (source, text) in layers {
            let file: ThemeFile = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
            for (name, value) in file.colors {
                let color = Color::from_str(&value)
                    .map_err(|_| format!("{source}: colour {name:?}: cannot read {value:?} as a colour"))?;
                colors.insert(name, color);
            }
        }
        let mut take =
            |name: &str| colors.remove(name).ok_or_else(|| format!("theme: colour {name:?} is missing"));
        let theme = Theme {
            border: take("border")?,
            title: take("title")?,
            label: take("label")?,
            text: take("text")?,
            leader: take("leader")?,
            healthy: take("healthy")?,
            unhealthy: take("unhealthy")?,
            down: take("down")?,
            learner: take("learner")?,
            alarm: take("alarm")?,
            selected_bg: take("selected_bg")?,
            hint: take("hint")?,
        };
        if let Some(unknown) = colors.keys().next() {
            return Err(format!("theme: unknown colour name {unknown:?}"));
        }
        Ok(theme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_user_colours_override() {
        let t = Theme::from_layers(&[("d", DEFAULT_THEME)]).unwrap();
        assert_eq!(t.down, Color::Red);
        let t = Theme::from_layers(&[("d", DEFAULT_THEME), ("u", "[colors]\ndown = \"#ff8800\"\n")]).unwrap();
        assert_eq!(t.down, Color::Rgb(0xff, 0x88, 0x00));
        assert_eq!(t.leader, Color::Green);
    }

    #[test]
    fn mistakes_are_named() {
        let err =
            Theme::from_layers(&[("d", DEFAULT_THEME), ("u", "[colors]\ndown = \"blurple\"\n")]).unwrap_err();
        assert_eq!(err, "u: colour \"down\": cannot read \"blurple\" as a colour");
        let err =
            Theme::from_layers(&[("d", DEFAULT_THEME), ("u", "[colors]\nsky = \"red\"\n")]).unwrap_err();
        assert_eq!(err, "theme: unknown colour name \"sky\"");
    }
}
