//! A fixture for tests/console_tmux.rs, not a tool: it puts the terminal in the console's mode (raw,
//! alternate screen) and then panics, so the test can check that the panic hook restores the terminal
//! before the panic message is printed.

fn main() {
    let _guard = match etcdeck::ui::terminal::TerminalGuard::enter() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("cannot set up the terminal: {e}");
            std::process::exit(2);
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    panic!("deliberate panic inside the console's terminal mode");
}
