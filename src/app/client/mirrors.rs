//! `:mirror`'s read: the mirror checkpoints in the cluster, through the configured endpoints.

use etcd_client::GetOptions;

use crate::app::client::errors::with_timeout;
use crate::app::client::pool::Pool;
use crate::app::mirrors::MirrorRow;
use crate::etcd::mirror::{Checkpoint, RESERVED};
use crate::etcd::range::prefix_end;

impl Pool {
    pub(super) async fn mirrors(&self, endpoint: &str) -> Result<Vec<MirrorRow>, String> {
        let mut client = self.client(endpoint).await?;
        let options = GetOptions::new().with_range(prefix_end(RESERVED));
        let resp = with_timeout(self.config.command_timeout, client.get(RESERVED, Some(options))).await?;
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| MirrorRow {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                mod_revision: kv.mod_revision(),
                checkpoint: Checkpoint::decode(kv.value()),
            })
            .collect())
    }
}
