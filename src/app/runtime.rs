//! The loop that joins `update` to the workers without a terminal: `etcdeck status` runs it for one
//! refresh, tests run it for as long as they watch, and the console runs the same `apply` with key
//! presses mixed in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::app::client::Worker;
use crate::app::config_file::ContextSettings;
use crate::app::connection::{ConnectConfig, ConnectionArgs};
use crate::app::effect::Effect;
use crate::app::input::Input;
use crate::app::keys::KeyRequest;
use crate::app::msg::Msg;
use crate::app::state::State;
use crate::app::update::update;

pub struct Runtime {
    pub state: State,
    worker: Worker,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// Key pages asked for and not answered yet, with when they were asked for (for --timings).
    pages_asked: HashMap<u64, Instant>,
    /// Key pages answered since the last frame, with when they were asked for.
    pub pages_answered: Vec<Instant>,
    /// Effects only the terminal edge can run ($EDITOR, the clipboard), waiting for it.
    pub terminal_effects: Vec<Effect>,
    /// `etcdeck demo`'s member processes, which the console may kill and start.
    processes: Option<Box<dyn MemberProcesses>>,
    tx: mpsc::UnboundedSender<Msg>,
    /// The saved contexts `:ctx` switches between.
    contexts: Option<Contexts>,
}

/// The saved contexts, and the flags their settings replace (timeouts they do not set).
#[derive(Clone)]
pub struct Contexts {
    pub base: ConnectionArgs,
    pub saved: std::collections::BTreeMap<String, ContextSettings>,
}

/// The member processes `etcdeck demo` runs, as the console may act on them.
pub trait MemberProcesses: Send {
    /// Kills a member's process (as a crash); says what was done.
    fn kill(&mut self, name: &str) -> Result<String, String>;
    /// Starts a member's process again on its data; says what was done.
    fn start(&mut self, name: &str) -> Result<String, String>;
    /// Stops every member for a restore of `file` as the new cluster `token` of `members`, and
    /// returns the restore itself, to be run off the console's loop: it writes a new data dir per
    /// member (the old ones are kept) and returns them, or removes what it wrote and says why.
    fn begin_restore(&mut self, file: &Path, token: &str, members: &[String]) -> Result<RestoreJob, String>;
    /// Starts the members again: those restored on their new data dirs (name, dir), or, with
    /// None, the ones the restore stopped, on the data dirs they had; says what was done.
    fn finish_restore(&mut self, restored: Option<&[(String, PathBuf)]>) -> Result<String, String>;
    /// A step of a member's replacement (stop it, move its data dir aside, start it on an empty
    /// one as a member of the existing cluster); says what was done.
    fn replace_step(&mut self, step: &crate::app::replace::ProcessStep) -> Result<String, String>;
}

/// A restore's file work, run on a blocking thread: the new data dirs (member name, dir).
pub type RestoreJob = Box<dyn FnOnce() -> Result<Vec<(String, PathBuf)>, String> + Send>;

impl Runtime {
    /// Must be called inside a tokio runtime: effects are spawned as tasks.
    pub fn new(config: ConnectConfig, refresh_interval: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state =
            State::new(config.endpoints.clone(), config.user().map(str::to_string), refresh_interval);
        state.read_only = config.read_only.clone();
        state.context = config.context.clone();
        Self {
            state,
            worker: Worker::new(config, tx.clone()),
            rx,
            pages_asked: HashMap::new(),
            pages_answered: Vec::new(),
            terminal_effects: Vec::new(),
            processes: None,
            tx,
            contexts: None,
        }
    }

    /// Lets `:ctx NAME` switch to the saved contexts.
    pub fn with_contexts(mut self, contexts: Contexts) -> Self {
        self.state.contexts = contexts.saved.keys().cloned().collect();
        self.contexts = Some(contexts);
        self
    }

    /// Connects to the saved context `name`: new workers and channel (replies still on their way
    /// from the old connection are dropped with it), and a fresh view of the new cluster.
    fn switch_context(&mut self, name: &str) -> Result<(), String> {
        let contexts = self.contexts.as_ref().ok_or("no saved contexts")?;
        let ctx = contexts.saved.get(name).ok_or_else(|| format!("unknown context {name:?}"))?;
        let args = contexts.base.with_context(ctx).map_err(|e| e.to_string())?;
        let mut config = args.resolve(|_| None).map_err(|e| match e {
            crate::app::connection::ConfigError::PasswordRequired(user) => {
                format!("the password of {user} is asked for at start: run etcdeck --context {name}")
            }
            other => other.to_string(),
        })?;
        config.mark_context(name, ctx);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = State::new(
            config.endpoints.clone(),
            config.user().map(str::to_string),
            self.state.refresh_interval,
        );
        state.read_only = config.read_only.clone();
        state.context = config.context.clone();
        state.contexts = std::mem::take(&mut self.state.contexts);
        state.backup_dir = self.state.backup_dir.take();
        state.notice = Some(format!("context {name}: {}", config.endpoints.join(",")));
        self.worker = Worker::new(config, tx.clone());
        self.rx = rx;
        self.tx = tx;
        self.state = state;
        self.pages_asked.clear();
        self.pages_answered.clear();
        Ok(())
    }

    /// Hands the console `etcdeck demo`'s member processes.
    pub fn with_processes(mut self, processes: Box<dyn MemberProcesses>) -> Self {
        self.processes = Some(processes);
        self.state.demo = true;
        self
    }

    /// Applies one input and hands its effects to the workers (never awaited here); returns how many
    /// effects it started.
    pub fn apply(&mut self, input: Input) -> usize {
        if let Input::Msg(Msg::KeyPage { request, .. }) = &input {
            if let Some(asked) = self.pages_asked.remove(request) {
                self.pages_answered.push(asked);
            }
        }
        let ack = match &input {
            Input::Msg(Msg::Watch { ack, .. }) => Some(ack.clone()),
            _ => None,
        };
        let asked = self.state.modal_mark();
        let effects = update(&mut self.state, input);
        let now_asked = self.state.modal_mark();
        if now_asked.is_some() && now_asked != asked {
            // A new question: not on screen until the next frame is drawn.
            self.state.modal_unseen = true;
        }
        if let Some(ack) = ack {
            ack.release();
        }
        for effect in &effects {
            if let Effect::Keys(KeyRequest::List { request, .. }) = effect {
                self.pages_asked.insert(*request, Instant::now());
            }
        }
        let n = effects.len();
        for effect in effects {
            match effect {
                Effect::Editor { .. } | Effect::Copy { .. } => self.terminal_effects.push(effect),
                Effect::SwitchContext { name } => {
                    if let Err(e) = self.switch_context(&name) {
                        self.state.notice = Some(format!("✗ context {name}: {e}"));
                    }
                }
                Effect::MemberProcess { name, start } => {
                    // Signals and fork/exec: quick, and done on this thread (see node::local).
                    let result = match self.processes.as_mut() {
                        Some(p) if start => p.start(&name),
                        Some(p) => p.kill(&name),
                        None => Err("this console runs no member processes".into()),
                    };
                    let _ = self.tx.send(Msg::Process { result });
                }
                Effect::ReplaceProcess { request, step } => {
                    // Signals, renames and fork/exec: quick, and done on this thread (see node::local).
                    let result = match self.processes.as_mut() {
                        Some(p) => p.replace_step(&step),
                        None => Err("this console runs no member processes".into()),
                    };
                    let _ = self.tx.send(Msg::ReplaceProcess { request, result });
                }
                Effect::RestoreLocal { request, file, token, members } => {
                    let job = match self.processes.as_mut() {
                        Some(p) => p.begin_restore(&file, &token, &members),
                        None => Err("this console runs no member processes".into()),
                    };
                    match job {
                        // Writing a data dir per member takes as long as the snapshot is big.
                        Ok(job) => {
                            let tx = self.tx.clone();
                            tokio::task::spawn_blocking(move || {
                                let _ = tx.send(Msg::RestoreDirs { request, result: job() });
                            });
                        }
                        Err(e) => {
                            let _ = self.tx.send(Msg::RestoreDirs { request, result: Err(e) });
                        }
                    }
                }
                Effect::FinishRestore { request, restored } => {
                    // Starting processes: done on this thread (see node::local).
                    let result = match (self.processes.as_mut(), restored) {
                        (None, _) => Err("this console runs no member processes".into()),
                        (Some(p), Ok(dirs)) => p.finish_restore(Some(&dirs)),
                        (Some(p), Err(e)) => Err(match p.finish_restore(None) {
                            Ok(_) => format!("{e}; the members run again on their old data dirs"),
                            Err(again) => format!("{e}; starting the members again failed too: {again}"),
                        }),
                    };
                    let _ = self.tx.send(Msg::Restored { request, result });
                }
                effect => self.worker.run(effect),
            }
        }
        n
    }

    /// Lets time pass; returns how many effects that started (non-zero when a refresh began).
    pub fn tick(&mut self) -> usize {
        self.apply(Input::Tick { now: Instant::now(), wall: SystemTime::now() })
    }

    /// Waits for the next worker report.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.rx.recv().await
    }

    /// Applies every report already waiting, without waiting; returns how many there were.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Ok(msg) = self.rx.try_recv() {
            self.apply(Input::Msg(msg));
            n += 1;
        }
        n
    }

    /// Ticks every `tick` and applies reports until `done` holds or `limit` passes; returns whether
    /// `done` held.
    pub async fn run_until(
        &mut self,
        limit: Duration,
        tick: Duration,
        mut done: impl FnMut(&State) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if done(&self.state) {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return done(&self.state),
                _ = ticker.tick() => { self.tick(); }
                msg = self.rx.recv() => match msg {
                    Some(msg) => { self.apply(Input::Msg(msg)); }
                    None => return done(&self.state),
                },
            }
        }
    }

    /// Runs exactly one complete refresh round and returns the state it produced.
    pub async fn refresh_once(config: ConnectConfig) -> State {
        // Every request has its own timeout, so one round ends within two steps (member list, then
        // the new members' probes), each at most a dial, an authentication and a request:
        // 2 × (dial + 2 × command). The limit below is only a backstop past that.
        let limit = (config.dial_timeout + config.command_timeout * 2) * 2 + Duration::from_secs(1);
        let mut rt = Runtime::new(config, Duration::from_secs(3600));
        rt.run_until(limit, Duration::from_millis(50), State::has_complete_view).await;
        rt.state
    }
}
