//! The sample data `etcdeck demo` puts into its cluster, as a small production setup would hold it:
//! a service registry whose instances live on a lease kept alive (as their services would keep it),
//! JSON and YAML configuration with a history of changes, and feature flags.

pub mod kubernetes;

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, PutOptions};

/// The registry's lease TTL; the keeper renews it every third of it.
pub const REGISTRY_TTL: i64 = 30;

const INSTANCES: &[(&str, &str, u16, &str)] = &[
    ("api", "10.0.1.11", 8080, "eu-west-1a"),
    ("api", "10.0.1.12", 8080, "eu-west-1b"),
    ("api", "10.0.1.13", 8080, "eu-west-1c"),
    ("worker", "10.0.2.21", 9090, "eu-west-1a"),
    ("worker", "10.0.2.22", 9090, "eu-west-1b"),
];

/// /config/app.json, as three deploys changed it.
const APP_CONFIG: &[&str] = &[
    r#"{"service":"checkout","replicas":2,"timeouts":{"connect_ms":500,"request_ms":2000},"log_level":"info"}"#,
    r#"{"service":"checkout","replicas":3,"timeouts":{"connect_ms":500,"request_ms":2000},"log_level":"info"}"#,
    r#"{"service":"checkout","replicas":3,"timeouts":{"connect_ms":250,"request_ms":1500},"log_level":"debug","canary":{"enabled":true,"percent":5}}"#,
];

const DB_YAML: &str = "primary: db-1.internal:5432\nreplicas:\n  - db-2.internal:5432\n  - db-3.internal:5432\npool:\n  max_connections: 50\n  idle_timeout: 5m\n";

const FLAGS: &[(&str, &str)] = &[("new-checkout", "true"), ("dark-mode", "false"), ("beta-search", "true")];

const README: &str = "This cluster was started by `etcdeck demo`: three etcdeck nodes on loopback.\n\
In the members view, x kills the selected member's process (as a crash) and s starts it again:\n\
kill the leader and watch another take over; kill two of three and watch quorum go and come back.\n\
X replaces a member as the runbook does for a damaged one: remove, wipe, add, start, wait.\n\
Tab opens this key browser; w or W tails a key or a prefix; ? lists every key.\n";

/// Keeps the registry's lease alive until dropped.
pub struct Seeded {
    pub keys: usize,
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for Seeded {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Writes the sample data through `endpoints` (with `kubernetes`, a control plane's objects under
/// /registry/ too) and starts renewing the registry's lease.
pub async fn seed(endpoints: &[String], kubernetes: bool) -> Result<Seeded, String> {
    let error = |e: etcd_client::Error| e.to_string();
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    let mut client = Client::connect(endpoints, Some(options)).await.map_err(error)?;
    let mut keys = 0;
    if kubernetes {
        for (key, value) in kubernetes::objects()? {
            client.put(key, value, None).await.map_err(error)?;
            keys += 1;
        }
    }
    let lease = client.lease_grant(REGISTRY_TTL, None).await.map_err(error)?.id();
    for (service, host, port, zone) in INSTANCES {
        let value =
            format!(r#"{{"host":"{host}","port":{port},"zone":"{zone}","version":"1.14.2","healthy":true}}"#);
        let key = format!("/services/{service}/{host}:{port}");
        client.put(key, value, Some(PutOptions::new().with_lease(lease))).await.map_err(error)?;
        keys += 1;
    }
    for config in APP_CONFIG {
        client.put("/config/app.json", *config, None).await.map_err(error)?;
    }
    client.put("/config/db.yaml", DB_YAML, None).await.map_err(error)?;
    keys += 2;
    for (flag, on) in FLAGS {
        client.put(format!("/config/feature-flags/{flag}"), *on, None).await.map_err(error)?;
        keys += 1;
    }
    client.put("/demo/README", README, None).await.map_err(error)?;
    keys += 1;
    let keeper = tokio::spawn(keep_alive(client, lease));
    Ok(Seeded { keys, keeper })
}

/// Renews the lease every third of its TTL, through whichever member answers; a member killed in
/// the demo costs a renewal or two, not the registry.
async fn keep_alive(mut client: Client, lease: i64) {
    let period = Duration::from_secs((REGISTRY_TTL / 3) as u64);
    loop {
        if let Ok((mut keeper, mut stream)) = client.lease_keep_alive(lease).await {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
                    Ok(Ok(Some(_))) => {}
                    _ => break,
                }
                tokio::time::sleep(period).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
