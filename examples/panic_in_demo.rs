//! A fixture for tests/console_tmux.rs, not a tool: it starts the demo's local cluster (with the
//! etcdeck binary named by its first argument), waits until the members serve, then panics, so the
//! test can check that unwinding stops every member and removes the demo's directory.

fn main() {
    let program = std::env::args_os().nth(1).map(std::path::PathBuf::from).unwrap_or_default();
    let mut cluster = match etcdeck::node::local::LocalCluster::start(&program, 3, false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start the members: {e}");
            std::process::exit(2);
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !matches!(cluster.health(), Ok(true)) {
        if std::time::Instant::now() > deadline {
            eprintln!("the members did not become healthy");
            std::process::exit(2);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!("serving");
    panic!("deliberate panic while the demo's members run");
}
