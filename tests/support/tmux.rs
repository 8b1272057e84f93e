//! Driving the console as a person does: a tmux server of the test's own runs it, send-keys types,
//! paste-buffer pastes, capture-pane reads the screen.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{etcdeck_bin, without_etcdctl_env};

/// A tmux server of our own (its own socket), killed with this handle.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(command: &str, width: u16, height: u16) -> Self {
        let socket = format!("etcdeck-test-{}-{}", std::process::id(), rand_suffix());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "t", "-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    /// A tmux command on this server (its own socket, no config file, no ETCDCTL_*).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        // The tmux server, and so the console in its pane, starts without the caller's ETCDCTL_*.
        without_etcdctl_env(&mut c);
        c
    }

    pub fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "t"]).output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into()
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = self.cmd().args(["send-keys", "-t", "t"]).args(keys).status().expect("send-keys");
        assert!(status.success());
    }

    /// Pastes `text` as a terminal does with bracketed paste on (plain keys if the program did not
    /// ask for it): tmux's load-buffer, then paste-buffer -p.
    pub fn paste(&self, text: &str) {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(["load-buffer", "-b", "p", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("load-buffer");
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the buffer");
        assert!(child.wait().expect("load-buffer").success());
        let status = self
            .cmd()
            .args(["paste-buffer", "-p", "-d", "-b", "p", "-t", "t"])
            .status()
            .expect("paste-buffer");
        assert!(status.success());
    }

    /// Types a console command after `:`, once the prompt is drawn, and Enter.
    pub fn command(&self, command: &str) {
        self.keys(&[":"]);
        self.wait_for("the command prompt", Duration::from_secs(5), |s| {
            s.lines().any(|l| l.starts_with(':'))
        });
        self.keys(&["-l", command]);
        self.keys(&["Enter"]);
    }

    /// Runs a tmux command on this server; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into()
    }

    pub fn resize(&self, width: u16, height: u16) {
        let status = self
            .cmd()
            .args(["resize-window", "-t", "t", "-x", &width.to_string(), "-y", &height.to_string()])
            .status()
            .expect("resize-window");
        assert!(status.success());
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        let mut matched: Option<String> = None;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                // tmux may be read halfway through drawing a frame (one CI run saw a dialog cut off
                // mid-line): the screen counts once two captures in a row agree.
                if matched.as_deref() == Some(screen.as_str()) {
                    return screen;
                }
                if Instant::now() >= deadline {
                    return screen;
                }
                matched = Some(screen);
                std::thread::sleep(Duration::from_millis(30));
                continue;
            }
            matched = None;
            assert!(Instant::now() < deadline, "waited {limit:?} for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the pane's shell to say etcdeck exited (the pane commands print "etcdeck exited
    /// <status>"), checks the status was 0, and returns the screen after.
    pub fn wait_exited_ok(&self, limit: Duration) -> String {
        let after = self.wait_for("etcdeck to exit", limit, |s| s.contains("etcdeck exited"));
        assert!(after.contains("etcdeck exited 0"), "etcdeck exited with an error:\n{after}");
        after
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The console's pane command: after etcdeck exits, the shell prints a marker with its exit status
/// and stays, so the test can see the restored screen.
pub fn pane_command(endpoints: &str, extra: &str) -> String {
    pane_command_env(endpoints, extra, "")
}

pub fn pane_command_env(endpoints: &str, extra: &str, env: &str) -> String {
    format!(
        "env TERM=xterm-256color {env} {} --endpoints {endpoints} {extra}; echo \"etcdeck exited $?\"; sleep 60",
        etcdeck_bin()
    )
}

/// `etcdeck demo <extra>` in a pane, its temporary directory under `tmp`.
pub fn demo_pane(tmp: &std::path::Path, extra: &str) -> Tmux {
    let command = format!(
        "env TERM=xterm-256color TMPDIR={} {} demo {extra}; echo \"etcdeck exited $?\"; sleep 60",
        tmp.display(),
        etcdeck_bin()
    );
    Tmux::start(&command, 160, 40)
}

/// The leader's name in the dashboard's header ("leader n2 (…)").
pub fn leader_name(screen: &str) -> Option<String> {
    let rest = screen.split("leader ").nth(1)?;
    let name = rest.split_whitespace().next()?;
    name.starts_with('n').then(|| name.to_string())
}
