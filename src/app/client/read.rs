//! One read for the command line (`etcdeck get`): from the first endpoint that answers, as
//! etcdctl's balancer moves on from a member it cannot reach.

use etcd_client::GetOptions;

use crate::app::client::connect::connect;
use crate::app::client::errors::with_timeout;
use crate::app::connection::ConnectConfig;

/// A key read: its name, value and mod revision.
pub type Read = (Vec<u8>, Vec<u8>, i64);

/// `key` (with `prefix`, every key under it) at revision `rev` (0: the latest).
pub async fn get(config: &ConnectConfig, key: &[u8], prefix: bool, rev: i64) -> Result<Vec<Read>, String> {
    let mut last_error = String::from("no endpoints");
    for endpoint in &config.endpoints {
        let mut client = match connect(config, endpoint).await {
            Ok(client) => client,
            Err(e) => {
                last_error = format!("{endpoint}: {e}");
                continue;
            }
        };
        let mut options = GetOptions::new().with_revision(rev);
        if prefix {
            options = options.with_prefix();
        }
        match with_timeout(config.command_timeout, client.get(key, Some(options))).await {
            Ok(response) => {
                return Ok(response
                    .kvs()
                    .iter()
                    .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
                    .collect())
            }
            Err(e) => last_error = format!("{endpoint}: {e}"),
        }
    }
    Err(last_error)
}
