//! The loop that joins `update` to the workers without a terminal: `etcdeck status` runs it for one
//! refresh, tests run it for as long as they watch, and the console runs the same `apply` with key
//! presses mixed in.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::app::client::Worker;
use crate::app::connection::ConnectConfig;
use crate::app::effect::Effect;
use crate::app::keys::KeyRequest;
use crate::app::msg::Msg;
use crate::app::state::State;
use crate::app::update::{update, Input};

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
}

/// The member processes `etcdeck demo` runs, as the console may act on them.
pub trait MemberProcesses: Send {
    /// Kills a member's process (as a crash); says what was done.
    fn kill(&mut self, name: &str) -> Result<String, String>;
    /// Starts a member's process again on its data; says what was done.
    fn start(&mut self, name: &str) -> Result<String, String>;
}

impl Runtime {
    /// Must be called inside a tokio runtime: effects are spawned as tasks.
    pub fn new(config: ConnectConfig, refresh_interval: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state =
            State::new(config.endpoints.clone(), config.user().map(str::to_string), refresh_interval);
        state.read_only = config.read_only.clone();
        Self {
            state,
            worker: Worker::new(config, tx.clone()),
            rx,
            pages_asked: HashMap::new(),
            pages_answered: Vec::new(),
            terminal_effects: Vec::new(),
            processes: None,
            tx,
        }
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
        let effects = update(&mut self.state, input);
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
                Effect::MemberProcess { name, start } => {
                    // Signals and fork/exec: quick, and done on this thread (see node::local).
                    let result = match self.processes.as_mut() {
                        Some(p) if start => p.start(&name),
                        Some(p) => p.kill(&name),
                        None => Err("this console runs no member processes".into()),
                    };
                    let _ = self.tx.send(Msg::Process { result });
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
