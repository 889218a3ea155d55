//! The bucket: an S3-compatible object store (Garage, MinIO, R2, AWS)
//! through the `object_store` crate, where every object is sealed before it
//! leaves the host.
//!
//! A sealed object is `SPR1 | nonce (24 bytes) | XChaCha20-Poly1305(zstd(data))`
//! with the object's own key as associated data: whoever runs the bucket
//! reads nothing, and an object changed, damaged, truncated or moved to
//! another key fails to open ([`Error::Corrupt`]) instead of being
//! restored.

use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, PutPayload};
use rand::RngCore;

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"SPR1";
const NONCE: usize = 24;
/// zstd's level: fast enough to keep up with a disk, half the bytes of
/// typical system files.
const LEVEL: i32 = 3;

/// The server's replication key: 32 random bytes, kept as 64 hex digits
/// in a file of mode 0600. Without it nothing in the bucket can be read,
/// so a copy belongs somewhere other than the machine it protects.
#[derive(Clone)]
pub struct ReplicaKey([u8; 32]);

impl std::fmt::Debug for ReplicaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplicaKey(..)")
    }
}

impl ReplicaKey {
    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<ReplicaKey> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::path("cannot read key", path, e))?;
        let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
        let Some(bytes) = bytes else {
            return Err(Error::Invalid(format!(
                "{} does not hold a replication key (64 hex digits)",
                path.display()
            )));
        };
        let mut key = [0; 32];
        key.copy_from_slice(&bytes);
        Ok(ReplicaKey(key))
    }

    /// Reads the key at `path`, making a new one there first when there is
    /// none; says whether it was made.
    pub fn load_or_create(path: &Path) -> Result<(ReplicaKey, bool)> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut key = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                f.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::path("cannot write key", path, e))?;
                Ok((ReplicaKey(key), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((ReplicaKey::load(path)?, false))
            }
            Err(e) => Err(Error::path("cannot write key", path, e)),
        }
    }
}

/// Where replicas go: `s3://bucket` or `s3://bucket/prefix`; endpoint,
/// region and credentials from the standard `AWS_*` variables unless given.
#[derive(Debug, Clone, Default)]
pub struct BucketConfig {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Cheap to clone: the client is shared.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every key, with its trailing slash; may be empty.
    prefix: String,
    cipher: XChaCha20Poly1305,
    url: String,
    /// The store's own id, kept in its `key-check` object: a bucket of the
    /// same name elsewhere, or emptied and made again, has another.
    identity: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Bucket {
    pub fn open(cfg: &BucketConfig, key: &ReplicaKey) -> Result<Bucket> {
        let rest = cfg.url.strip_prefix("s3://").ok_or_else(|| {
            Error::Invalid(format!(
                "object store {:?}: write it as s3://bucket or s3://bucket/prefix",
                cfg.url
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty() || prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(Error::Invalid(format!(
                "object store {:?}: no bucket",
                cfg.url
            )));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &cfg.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &cfg.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &cfg.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let endpoint = cfg
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        // A self-hosted store on loopback or a private network speaks
        // plain HTTP when its endpoint says so.
        let plain_http = endpoint.is_some_and(|e| e.starts_with("http://"));
        // A bucket away must not hold a shipment for minutes: a few quick
        // retries, then the failure is reported and the next round tries.
        let builder = builder
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(20),
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(plain_http)
                    .with_connect_timeout(std::time::Duration::from_secs(3))
                    .with_timeout(std::time::Duration::from_secs(60)),
            );
        let store = builder
            .build()
            .map_err(|e| Error::Bucket(format!("{}: {e}", cfg.url)))?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            cipher: XChaCha20Poly1305::new((&key.0).into()),
            url: cfg.url.clone(),
            identity: Default::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A short name of this store (see [`Bucket::label`]), for files that
    /// speak of it.
    pub async fn id(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        Ok(hex::encode(
            &Sha256::digest(self.label().await?.as_bytes())[..8],
        ))
    }

    fn path(&self, key: &str) -> object_store::path::Path {
        object_store::path::Path::from(format!("{}{key}", self.prefix))
    }

    /// Compresses and seals `data` for the object `key`.
    pub fn seal(&self, key: &str, data: &[u8]) -> Result<Vec<u8>> {
        let packed =
            zstd::bulk::compress(data, LEVEL).map_err(|e| Error::io("cannot compress", e))?;
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.aad(key);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &packed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Bucket("cannot seal".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Bucket::seal`] made for `key`.
    pub fn open_sealed(&self, key: &str, object: &[u8]) -> Result<Vec<u8>> {
        let corrupt = || Error::Corrupt {
            object: self.describe(key),
        };
        if object.len() < MAGIC.len() + NONCE || &object[..MAGIC.len()] != MAGIC {
            return Err(corrupt());
        }
        let (nonce, sealed) = object[MAGIC.len()..].split_at(NONCE);
        let aad = self.aad(key);
        let packed = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        zstd::stream::decode_all(&packed[..]).map_err(|_| corrupt())
    }

    fn aad(&self, key: &str) -> String {
        format!("sprites replica v1: {}{key}", self.prefix)
    }

    /// `s3://bucket/prefix/key`, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.url.trim_end_matches('/'))
    }

    /// Checks that this server's key opens what the bucket holds (a small
    /// object every server writes on first use), so a bucket written with
    /// another key is refused before anything is mixed into it.
    pub async fn check_key(&self) -> Result<()> {
        self.label().await.map(|_| ())
    }

    /// `<url>#<store id>`: names this very store in the host's records of
    /// what was shipped, so a store of the same URL that is not the same
    /// (another endpoint, or emptied and made again) is never taken for it.
    pub async fn label(&self) -> Result<String> {
        const KEY: &str = "key-check";
        let id = self
            .identity
            .get_or_try_init(|| async {
                match self.get(KEY).await {
                    Ok(Some(id)) => Ok(String::from_utf8_lossy(&id).into_owned()),
                    Ok(None) => {
                        let mut id = [0u8; 16];
                        rand::rngs::OsRng.fill_bytes(&mut id);
                        let id = hex::encode(id);
                        self.put(KEY, id.clone().into_bytes()).await?;
                        Ok(id)
                    }
                    Err(Error::Corrupt { .. }) => Err(Error::Invalid(format!(
                        "the replication key does not open {}: it was written with another key \
                         (give that key with --replica-key-file, or use another bucket or prefix)",
                        self.url
                    ))),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(format!("{}#{id}", self.url))
    }

    /// [`Bucket::label`] if it is known already.
    pub fn label_now(&self) -> Option<String> {
        self.identity.get().map(|id| format!("{}#{id}", self.url))
    }

    /// Stores `data` sealed as `key`, replacing what was there.
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<u64> {
        let sealed = {
            let key = key.to_string();
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.seal(&key, &data))
                .await
                .map_err(|e| Error::Bucket(format!("sealing stopped: {e}")))??
        };
        let n = sealed.len() as u64;
        self.put_raw(key, sealed).await?;
        Ok(n)
    }

    /// Stores bytes as they are (sealed already).
    pub async fn put_raw(&self, key: &str, sealed: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from(sealed))
            .await
            .map_err(|e| self.failed("cannot store", key, e))?;
        Ok(())
    }

    /// The object `key`, opened; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(raw) = self.get_raw(key).await? else {
            return Ok(None);
        };
        let key = key.to_string();
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.open_sealed(&key, &raw).map(Some))
            .await
            .map_err(|e| Error::Bucket(format!("opening stopped: {e}")))?
    }

    /// The object `key` as stored (sealed).
    pub async fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| self.failed("cannot read", key, e))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("cannot read", key, e)),
        }
    }

    /// Stores `data` as it is, in one multipart upload of 16 MiB parts, four
    /// at a time: no compression, no sealing. What the benchmark measures
    /// shipping against; nothing of a sprite goes this way.
    pub async fn put_plain(&self, key: &str, data: bytes::Bytes) -> Result<()> {
        let upload = self
            .store
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.failed("cannot store", key, e))?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, super::SEGMENT);
        let mut rest = data;
        while !rest.is_empty() {
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.failed("cannot store", key, e))?;
            let part = rest.split_to(rest.len().min(super::SEGMENT));
            writer.put(part);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.failed("cannot store", key, e))?;
        Ok(())
    }

    /// Keys under `dir` (relative to the prefix, like every key here).
    pub async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let path = self.path(dir);
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&path));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.failed("cannot list", dir, e))?;
            let full = meta.location.to_string();
            if let Some(key) = full.strip_prefix(&self.prefix) {
                out.push(key.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("cannot delete", key, e)),
        }
    }

    fn failed(&self, what: &str, key: &str, e: object_store::Error) -> Error {
        Error::Bucket(format!("{what} {}: {e}", self.describe(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(prefix: &str) -> Bucket {
        let cfg = BucketConfig {
            url: format!("s3://b/{prefix}"),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("x".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
        };
        Bucket::open(&cfg, &ReplicaKey([7; 32])).unwrap()
    }

    #[test]
    fn sealed_objects_open_only_where_they_were_sealed() {
        let b = bucket("p");
        let data = b"the same line again and again\n".repeat(1000);
        let sealed = b.seal("a/1", &data).unwrap();
        assert!(
            sealed.len() < data.len() / 4,
            "compressed: {}",
            sealed.len()
        );
        assert!(!sealed.windows(8).any(|w| w == b"the same"));
        assert_eq!(b.open_sealed("a/1", &sealed).unwrap(), data);
        // Moved to another key, or under another prefix: refused.
        assert!(matches!(
            b.open_sealed("a/2", &sealed),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            bucket("q").open_sealed("a/1", &sealed),
            Err(Error::Corrupt { .. })
        ));
        // Any flipped bit, or a cut: refused, naming the object.
        for i in [0, 5, 40, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            let err = b.open_sealed("a/1", &bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "s3://b/p/a/1 fails its integrity check (changed or damaged in the bucket); it is not restored"
            );
        }
        assert!(b.open_sealed("a/1", &sealed[..sealed.len() - 1]).is_err());
        // Another key opens nothing.
        let other = Bucket::open(
            &BucketConfig {
                url: "s3://b/p".into(),
                endpoint: Some("http://127.0.0.1:9".into()),
                region: Some("x".into()),
                access_key_id: Some("k".into()),
                secret_access_key: Some("s".into()),
            },
            &ReplicaKey([8; 32]),
        )
        .unwrap();
        assert!(other.open_sealed("a/1", &sealed).is_err());
    }

    #[test]
    fn urls_name_a_bucket() {
        for bad in ["b", "http://x/b", "s3://", "s3:///p", "s3://b/../x"] {
            let cfg = BucketConfig {
                url: bad.into(),
                ..Default::default()
            };
            assert!(Bucket::open(&cfg, &ReplicaKey([0; 32])).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_kept_private_and_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replica.key");
        let (a, made) = ReplicaKey::load_or_create(&path).unwrap();
        assert!(made);
        let (b, made) = ReplicaKey::load_or_create(&path).unwrap();
        assert!(!made);
        assert_eq!(a.0, b.0);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&path, "not a key").unwrap();
        assert!(ReplicaKey::load(&path).is_err());
    }
}
