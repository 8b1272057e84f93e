//! One side of a mirror: a cluster reached through any of its endpoints. A request that fails drops
//! the connection, and the next one dials the next endpoint, so a dead member costs one retry.

use std::time::Duration;

use etcd_client::{Client, GetOptions, GetResponse};

use crate::app::client::{connect, error_text};
use crate::app::connection::ConnectConfig;

pub struct Cluster {
    pub config: ConnectConfig,
    /// "source" or "destination", for messages.
    pub side: &'static str,
    client: Option<Client>,
    next: usize,
}

impl Cluster {
    pub fn new(config: ConnectConfig, side: &'static str) -> Self {
        Self { config, side, client: None, next: 0 }
    }

    /// A connected client, dialing the next endpoint when there is none.
    pub async fn client(&mut self) -> Result<Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let endpoint = self.config.endpoints[self.next % self.config.endpoints.len()].clone();
        self.next += 1;
        let client = connect(&self.config, &endpoint).await.map_err(|e| format!("{endpoint}: {e}"))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Forgets the connection after a failure; the next request dials another endpoint.
    pub fn failed(&mut self) {
        self.client = None;
    }

    /// The command timeout, for a request.
    pub fn timeout(&self) -> Duration {
        self.config.command_timeout
    }

    /// A range read, bounded by the command timeout; a failure drops the connection. Answers up to
    /// [`MAX_READ`] bytes are taken (gRPC's default is 4 MiB; etcdctl takes 2 GiB).
    pub async fn get(&mut self, key: Vec<u8>, options: GetOptions) -> Result<GetResponse, String> {
        let client = self.client().await?;
        let mut kv = client.kv_client().max_decoding_message_size(MAX_READ);
        let result = match tokio::time::timeout(self.timeout(), kv.get(key, Some(options))).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(error_text(&e)),
            Err(_) => Err(format!("context deadline exceeded (after {:?})", self.timeout())),
        };
        if result.is_err() {
            self.failed();
        }
        result
    }
}

/// The largest answer a read takes: a page of keys, a watch response.
pub const MAX_READ: usize = 256 << 20;

/// Whether an error says an answer was larger than [`MAX_READ`] (a page of large values: ask for
/// fewer keys).
pub fn is_too_large(error: &str) -> bool {
    error.contains("message length too large")
}

impl Cluster {
    /// A page of [from, end) at `revision` (0: the latest), of up to `*limit` keys; `*limit` is
    /// halved while the answer is larger than [`MAX_READ`] (large values), and stays so.
    pub async fn page(
        &mut self,
        from: &[u8],
        end: &[u8],
        revision: i64,
        limit: &mut i64,
    ) -> Result<GetResponse, String> {
        loop {
            let mut options = GetOptions::new().with_range(end.to_vec()).with_limit(*limit);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            match self.get(from.to_vec(), options).await {
                Err(e) if is_too_large(&e) && *limit > 1 => *limit /= 2,
                other => return other,
            }
        }
    }
}

/// Whether an error says the revision asked for is compacted (etcd's ErrCompacted).
pub fn is_compacted(error: &str) -> bool {
    error.contains("required revision has been compacted")
}

/// Waits between retries: 0.5 s doubling to 30 s, reset by a success.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Duration::from_millis(500) }
    }
}

impl Backoff {
    /// The wait before the next retry (and doubles the one after it).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        wait
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(500));
        assert!(is_compacted("etcdserver: mvcc: required revision has been compacted"));
    }
}
