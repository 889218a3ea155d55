//! The host's command-line and environment settings, shared by every binary
//! that opens a [`Host`](crate::Host) (the server and `vmhost`).

use std::path::PathBuf;

use crate::runtime::cli::Flavor;
use crate::sprite::replica::{Bucket, BucketConfig, ReplicaKey};
use crate::HostConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Directory holding the storage pool.
    #[arg(long, env = "SPRITES_DATA_DIR", default_value = "/var/lib/sprites")]
    pub data_dir: PathBuf,
    /// Runtime state (sockets, the runtime's state); cleared by a reboot.
    #[arg(long, env = "SPRITES_RUN_DIR", default_value = "/run/sprites")]
    pub run_dir: PathBuf,
    /// Which host's sprites, when several share one pool.
    #[arg(long, env = "SPRITES_INSTANCE", default_value = "default")]
    pub instance: String,
    /// OCI runtime for the sandboxes: crun or runc.
    #[arg(long, env = "SPRITES_RUNTIME", default_value = "crun")]
    pub runtime: Flavor,
    /// Debian mirror for building the base image.
    #[arg(
        long,
        env = "SPRITES_DEBIAN_MIRROR",
        default_value = "http://deb.debian.org/debian"
    )]
    pub mirror: String,
    /// Let sprites reach the internet through the host (NAT; private
    /// ranges and the host itself stay out of reach). `false`: loopback only.
    #[arg(long, env = "SPRITES_EGRESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub egress: bool,
    /// The name servers sprites' resolvers ask, comma-separated addresses
    /// (port 53 unless given); default: the host's /etc/resolv.conf.
    #[arg(long, env = "SPRITES_NAME_SERVERS", value_delimiter = ',')]
    pub name_servers: Vec<String>,
    /// Replicate every sprite to this S3-compatible bucket (Garage, MinIO,
    /// R2, AWS): s3://BUCKET or s3://BUCKET/PREFIX. Credentials come from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the endpoint and region
    /// from the flags below or AWS_ENDPOINT_URL and AWS_REGION.
    #[arg(long, env = "SPRITES_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// The object store's endpoint (e.g. http://127.0.0.1:3900); default:
    /// AWS_ENDPOINT_URL, else AWS itself.
    #[arg(long, env = "SPRITES_OBJECT_STORE_ENDPOINT")]
    pub object_store_endpoint: Option<String>,
    /// The object store's region; default: AWS_REGION.
    #[arg(long, env = "SPRITES_OBJECT_STORE_REGION")]
    pub object_store_region: Option<String>,
    /// The key everything is sealed with before it goes to the bucket
    /// (default: <data dir>/replica.key, made on first use). Keep a copy
    /// away from this machine: without it the bucket cannot be read.
    #[arg(long, env = "SPRITES_REPLICA_KEY_FILE")]
    pub replica_key_file: Option<PathBuf>,
    /// With an object store: seconds the bucket keeps the automatic
    /// (hidden) checkpoints taken to replicate; the last one, and every
    /// one a sprite lists, stay whatever their age.
    #[arg(long, env = "SPRITES_REPLICA_RETENTION", default_value_t = 24 * 3600)]
    pub replica_retention: u64,
    /// Bytes of dirty data from which the kernel writes out in the
    /// background (vm.dirty_background_bytes, lowered to this when it is
    /// higher), so checkpoints find little left to write; 0: leave it.
    #[arg(long, env = "SPRITES_WRITE_OUT_FROM", default_value_t = crate::sprite::WRITE_OUT_FROM)]
    pub write_out_from: u64,
}

impl HostArgs {
    /// The host's configuration; with an object store, opens the bucket
    /// with the replication key, making the key when `make_key` allows and
    /// there is none.
    pub fn config(&self, make_key: bool) -> crate::Result<HostConfig> {
        let mut cfg = HostConfig::new(&self.data_dir);
        cfg.run_dir = self.run_dir.clone();
        cfg.instance = self.instance.clone();
        cfg.runtime = self.runtime;
        cfg.egress = self.egress;
        if !self.name_servers.is_empty() {
            cfg.name_servers = self
                .name_servers
                .iter()
                .map(|s| {
                    let s = s.trim();
                    s.parse::<std::net::SocketAddr>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
                        .map_err(|_| {
                            crate::Error::Invalid(format!(
                                "name server {s:?}: an address, with or without :port"
                            ))
                        })
                })
                .collect::<crate::Result<_>>()?;
        }
        cfg.retention = std::time::Duration::from_secs(self.replica_retention);
        cfg.write_out_from = Some(self.write_out_from).filter(|b| *b > 0);
        if let Some(url) = &self.object_store {
            let key_file = self.key_file();
            let key = if make_key {
                let (key, made) = ReplicaKey::load_or_create(&key_file)?;
                if made {
                    tracing::warn!(
                        key = %key_file.display(),
                        "made a new replication key: keep a copy away from this machine; \
                         without it nothing in the bucket can be read"
                    );
                }
                key
            } else {
                ReplicaKey::load(&key_file)?
            };
            let bucket = BucketConfig {
                url: url.clone(),
                endpoint: self.object_store_endpoint.clone(),
                region: self.object_store_region.clone(),
                ..Default::default()
            };
            cfg.bucket = Some(std::sync::Arc::new(Bucket::open(&bucket, &key)?));
        }
        Ok(cfg)
    }

    pub fn key_file(&self) -> PathBuf {
        self.replica_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("replica.key"))
    }
}
