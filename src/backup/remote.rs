//! Where backups are uploaded: S3 (and S3-compatible servers), Google Cloud Storage, Azure Blob
//! Storage or a local path, through object_store, with each one's usual credential sources (for S3:
//! AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL and AWS_ALLOW_HTTP for a
//! server of one's own; GOOGLE_SERVICE_ACCOUNT...; AZURE_STORAGE_ACCOUNT_NAME...).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// Files above this are sent in parts.
const SINGLE_PUT: u64 = 16 << 20;
const PART: usize = 8 << 20;

/// An object store and the prefix backups go under.
pub struct Remote {
    /// The URL as given, for messages.
    pub url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

/// An object found under the prefix.
#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

impl Remote {
    /// The store a URL names: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or
    /// file:///path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: String| format!("--upload {text}: {why}");
        let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "file" => {
                let dir = url.to_file_path().map_err(|_| bad("not a local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(Self {
                    url: text.to_string(),
                    store: Arc::new(store),
                    prefix: ObjectPath::default(),
                });
            }
            other => {
                return Err(bad(format!("the scheme {other}:// is not one of s3://, gs://, az://, file://")));
            }
        };
        let prefix = ObjectPath::from(url.path().trim_matches('/'));
        Ok(Self { url: text.to_string(), store, prefix })
    }

    fn location(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    /// Where `name` is, for messages.
    pub fn shown(&self, name: &str) -> String {
        format!("{}/{name}", self.url.trim_end_matches('/'))
    }

    /// Sends the file at `path` as `name`, in parts when it is large, and checks the stored size.
    pub async fn upload(&self, path: &Path, name: &str) -> Result<(), String> {
        use tokio::io::AsyncReadExt;
        let location = self.location(name);
        let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        if size <= SINGLE_PUT {
            let bytes = tokio::fs::read(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
            self.store.put(&location, PutPayload::from(bytes)).await.map_err(|e| e.to_string())?;
        } else {
            let upload = self.store.put_multipart(&location).await.map_err(|e| e.to_string())?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let sent = async {
                let mut file =
                    tokio::fs::File::open(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
                let mut buf = vec![0u8; PART];
                loop {
                    let n = file.read(&mut buf).await.map_err(|e| format!("{}: {e}", path.display()))?;
                    if n == 0 {
                        return Ok::<_, String>(());
                    }
                    writer.wait_for_capacity(4).await.map_err(|e| e.to_string())?;
                    writer.write(&buf[..n]);
                }
            }
            .await;
            if let Err(e) = sent {
                // An unfinished multipart upload costs storage until it is aborted.
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.finish().await.map_err(|e| e.to_string())?;
        }
        let stored = self.store.head(&location).await.map_err(|e| e.to_string())?;
        if stored.size != size {
            return Err(format!("{} holds {} bytes, not {size}", self.shown(name), stored.size));
        }
        Ok(())
    }

    /// As `upload`, retried with backoff (1 s doubling, five attempts).
    pub async fn upload_retrying(&self, path: &Path, name: &str, log: impl Fn(&str)) -> Result<(), String> {
        let mut wait = Duration::from_secs(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload(path, name).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 => {
                    log(&format!(
                        "upload of {name} to {} failed (attempt {attempt} of 5): {e}; retrying in {} s",
                        self.url,
                        wait.as_secs()
                    ));
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => return Err(format!("upload of {name} to {}: {e}", self.url)),
            }
        }
    }

    /// The objects directly under the prefix (not in folders below it).
    pub async fn list(&self) -> Result<Vec<Object>, String> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let mut stream = self.store.list(prefix);
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| format!("{}: {e}", self.url))?;
            let Some(name) = meta.location.filename() else { continue };
            // Only what is directly under the prefix (the store lists every level below it).
            if meta.location != self.location(name) {
                continue;
            }
            out.push(Object { name: name.to_string(), size: meta.size, modified: meta.last_modified.into() });
        }
        Ok(out)
    }

    pub async fn delete(&self, name: &str) -> Result<(), String> {
        self.store.delete(&self.location(name)).await.map_err(|e| format!("{}: {e}", self.shown(name)))
    }

    /// Writes the object `name` to the file at `to`.
    pub async fn download(&self, name: &str, to: &Path) -> Result<u64, String> {
        use tokio::io::AsyncWriteExt;
        let got =
            self.store.get(&self.location(name)).await.map_err(|e| format!("{}: {e}", self.shown(name)))?;
        let mut stream = got.into_stream();
        let mut file = tokio::fs::File::create(to).await.map_err(|e| format!("{}: {e}", to.display()))?;
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("{}: {e}", self.shown(name)))?;
            file.write_all(&chunk).await.map_err(|e| format!("{}: {e}", to.display()))?;
            written += chunk.len() as u64;
        }
        file.sync_all().await.map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(written)
    }
}
