//! Certificates and ACME accounts in the database, and what a stored
//! certificate is: its chain and key, parsed, and when it is valid.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ServerConfig;

use crate::db::{now_ms, Db};

/// The private keys the database keeps (certificates' and the ACME
/// account's), sealed with the replica key when the server replicates:
/// the database's replica in the object store is readable by the bucket's
/// operator, who must not be able to act as this server's names. Sealed
/// for a row's name, so a key cannot be moved to another name's row.
/// Without replication they are kept as they are, in the database.
#[derive(Clone, Default)]
pub struct Secrets(Option<Arc<vmhost::replica::Bucket>>);

const SEALED: &str = "sealed:";

impl Secrets {
    pub fn sealed_with(bucket: Option<Arc<vmhost::replica::Bucket>>) -> Secrets {
        Secrets(bucket)
    }

    fn seal(&self, what: &str, secret: &str) -> anyhow::Result<String> {
        Ok(match &self.0 {
            Some(bucket) => format!(
                "{SEALED}{}",
                hex::encode(bucket.seal(&format!("tls/{what}"), secret.as_bytes())?)
            ),
            None => secret.to_string(),
        })
    }

    fn open(&self, what: &str, stored: &str) -> anyhow::Result<String> {
        let Some(sealed) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let Some(bucket) = &self.0 else {
            anyhow::bail!(
                "the key of {what} is sealed with a replica key this server was not given"
            );
        };
        let opened = bucket.open_sealed(&format!("tls/{what}"), &hex::decode(sealed)?)?;
        Ok(String::from_utf8(opened)?)
    }
}

/// A certificate ready to serve: its configuration and its validity.
#[derive(Clone)]
pub struct Issued {
    pub config: Arc<ServerConfig>,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

impl Issued {
    /// Made from a PEM chain (the certificate first) and its PEM key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> anyhow::Result<Issued> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("the certificate chain: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("the private key: {e}"))?;
        let leaf = chain
            .first()
            .ok_or_else(|| anyhow::anyhow!("the chain holds no certificate"))?;
        let (not_before_ms, not_after_ms) = validity(leaf)?;
        Ok(Issued {
            config: server_config(chain, key)?,
            not_before_ms,
            not_after_ms,
        })
    }

    pub fn renew_at_ms(&self) -> i64 {
        renew_at_ms(self.not_before_ms, self.not_after_ms)
    }

    /// Whether it may still be served.
    pub fn valid_now(&self) -> bool {
        now_ms() < self.not_after_ms
    }
}

/// A rustls configuration serving `chain` and `key`, HTTP/1.1.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The cryptography rustls uses (the cluster's, see
/// [`vmhost::cluster::provider`]).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    vmhost::cluster::provider()
}

/// A root made here and a certificate from it for `names` (host names or
/// IP addresses), with the certificate's key: (root, certificate, key), in
/// PEM. For `--tls-cert` on a private network whose clients trust the
/// root, and for the benchmark and the tests.
pub fn from_own_root(names: &[&str]) -> anyhow::Result<(String, String, String)> {
    let root_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sprites private root");
    let root = params.self_signed(&root_key)?;
    let issuer = rcgen::Issuer::new(params, root_key);
    let key = rcgen::KeyPair::generate()?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)?.signed_by(&key, &issuer)?;
    Ok((root.pem(), cert.pem(), key.serialize_pem()))
}

/// When a certificate valid from `not_before` to `not_after` should be
/// renewed: once two thirds of its life have passed (30 days before the end
/// of Let's Encrypt's 90), as Let's Encrypt advises.
pub fn renew_at_ms(not_before: i64, not_after: i64) -> i64 {
    not_after - (not_after - not_before) / 3
}

/// The validity of a DER certificate, in ms since the Unix epoch.
fn validity(der: &CertificateDer<'_>) -> anyhow::Result<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow::anyhow!("the certificate does not parse: {e}"))?;
    let v = cert.validity();
    Ok((
        v.not_before.timestamp() * 1000,
        v.not_after.timestamp() * 1000,
    ))
}

#[derive(sqlx::FromRow)]
struct Stored {
    chain_pem: String,
    key_pem: String,
}

/// The certificate stored for `name`, if any.
pub async fn load(db: &Db, secrets: &Secrets, name: &str) -> anyhow::Result<Option<Issued>> {
    let row: Option<Stored> =
        sqlx::query_as("SELECT chain_pem, key_pem FROM tls_certificates WHERE name = $1")
            .bind(name)
            .fetch_optional(db.pool())
            .await?;
    row.map(|r| Issued::from_pem(&r.chain_pem, &secrets.open(name, &r.key_pem)?))
        .transpose()
}

/// Keeps `chain_pem` and `key_pem` as the certificate of `name`.
pub async fn save(
    db: &Db,
    secrets: &Secrets,
    name: &str,
    chain_pem: &str,
    key_pem: &str,
) -> anyhow::Result<Issued> {
    let issued = Issued::from_pem(chain_pem, key_pem)?;
    let key_pem = secrets.seal(name, key_pem)?;
    sqlx::query(
        "INSERT INTO tls_certificates (name, chain_pem, key_pem, not_before_ms, not_after_ms, issued_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET chain_pem = excluded.chain_pem, \
         key_pem = excluded.key_pem, not_before_ms = excluded.not_before_ms, \
         not_after_ms = excluded.not_after_ms, issued_at_ms = excluded.issued_at_ms",
    )
    .bind(name)
    .bind(chain_pem)
    .bind(key_pem)
    .bind(issued.not_before_ms)
    .bind(issued.not_after_ms)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(issued)
}

/// Forgets the certificate of `name`.
pub async fn remove(db: &Db, name: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM tls_certificates WHERE name = $1")
        .bind(name)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Every stored name with when its certificate should be renewed.
pub async fn renewals(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT name, not_before_ms, not_after_ms FROM tls_certificates")
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, from, to)| (name, renew_at_ms(from, to)))
        .collect())
}

/// The account credentials kept for the ACME directory at `directory`.
pub async fn account(
    db: &Db,
    secrets: &Secrets,
    directory: &str,
) -> anyhow::Result<Option<String>> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(db.pool())
            .await?;
    stored
        .map(|s| secrets.open(&format!("account {directory}"), &s))
        .transpose()
}

/// Keeps `credentials` as the account at `directory`.
pub async fn save_account(
    db: &Db,
    secrets: &Secrets,
    directory: &str,
    credentials: &str,
) -> anyhow::Result<()> {
    let credentials = secrets.seal(&format!("account {directory}"), credentials)?;
    sqlx::query(
        "INSERT INTO acme_accounts (directory, credentials, created_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
    )
    .bind(directory)
    .bind(credentials)
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> Arc<vmhost::replica::Bucket> {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) =
            vmhost::replica::ReplicaKey::load_or_create(&dir.path().join("replica.key")).unwrap();
        let cfg = vmhost::replica::BucketConfig {
            url: "s3://sprites/t".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        Arc::new(vmhost::replica::Bucket::open(&cfg, &key).unwrap())
    }

    #[test]
    fn keys_are_sealed_for_their_row_only_when_the_database_replicates() {
        let key = "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n";
        let plain = Secrets::default();
        assert_eq!(plain.seal("web.example", key).unwrap(), key);
        assert_eq!(plain.open("web.example", key).unwrap(), key);

        let sealed = Secrets::sealed_with(Some(bucket()));
        let stored = sealed.seal("web.example", key).unwrap();
        assert!(stored.starts_with(SEALED) && !stored.contains("secret"));
        assert_eq!(sealed.open("web.example", &stored).unwrap(), key);
        // Moved to another name's row, it does not open; nor without the key.
        assert!(sealed.open("api.example", &stored).is_err());
        let refused = plain.open("web.example", &stored).unwrap_err().to_string();
        assert!(refused.contains("replica key"), "{refused}");
    }
}
