//! The terminal's modes. Raw mode and the alternate screen are undone on every way out: normal return,
//! error (the guard's Drop) and panic (the hook restores the terminal before the panic is printed).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::thread::ThreadId;

use crossterm::cursor::{Hide, Show};
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Holds the terminal in raw mode on the alternate screen until dropped.
pub struct TerminalGuard {
    pub terminal: Term,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        let _ = UI_THREAD.set(std::thread::current().id());
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        // Bracketed paste: a paste arrives as one event of text, not as keys.
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, Hide, EnableBracketedPaste) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl TerminalGuard {
    /// Gives the terminal back for `f` (an editor), then takes it again and redraws everything.
    pub fn suspend<T>(&mut self, f: impl FnOnce() -> T) -> io::Result<T> {
        restore();
        let out = f();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        execute!(io::stdout(), EnterAlternateScreen, Hide, EnableBracketedPaste)?;
        self.terminal.clear()?;
        Ok(out)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Whether raw mode and the alternate screen are on.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen, once: after a panic both the hook and the guard's Drop
/// call this, and leaving the alternate screen twice would move the cursor back over the panic
/// message.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), DisableBracketedPaste, LeaveAlternateScreen, Show);
        if let Ok(mut held) = HELD_PANICS.lock() {
            for message in held.drain(..) {
                eprintln!("{message}");
            }
        }
    }
}

/// The thread that draws: a panic there ends the console, so the terminal is restored first.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Panic messages from other threads while the console owns the screen; printing them then would
/// scribble over the dashboard, so they are printed once the terminal is restored.
static HELD_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_ui_thread = UI_THREAD.get() == Some(&std::thread::current().id());
            if ACTIVE.load(Ordering::SeqCst) && !on_ui_thread {
                // A worker's panic becomes an error reply (see app::client); the console goes on.
                if let Ok(mut held) = HELD_PANICS.lock() {
                    held.push(info.to_string());
                }
                return;
            }
            restore();
            previous(info);
        }));
    });
}
