//! Who may speak to whom in a cluster of hosts: mutual TLS under a
//! certificate authority of the cluster's own.
//!
//! The API servers hold the authority's key; they issue each machine an
//! identity of one of two roles, and the role is in the certificate, as
//! its extended key usage:
//!
//! - a **host** (`vmhost serve`) gets a server-only certificate for
//!   `<name>.hosts.sprites.internal`: API servers check that the host they
//!   reach is the one they meant;
//! - an **API server** gets a client-only certificate: hosts admit only
//!   peers presenting one, so a machine without an identity, one of
//!   another cluster, or a host (compromised, say) trying to drive another
//!   host's sprites is refused during the handshake.
//!
//! Keys are ECDSA P-256, made and checked by rcgen and rustls (*ring*).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why an identity could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot make a certificate: {0}")]
    Make(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot check certificates: {0}")]
    Verifier(#[from] VerifierBuilderError),
    #[error("the certificate and key are not an authority of cluster {0:?}: {1}")]
    NotTheAuthority(String, #[source] rustls::Error),
    #[error("a {0:?} identity cannot be used as a {1:?}")]
    Role(Role, Role),
    #[error("{0} is not a valid PEM {1}")]
    Pem(&'static str, &'static str),
    #[error("{0:?} is not a valid host name: lowercase letters, digits and hyphens")]
    Name(String),
    #[error("{0}: {1}")]
    File(String, #[source] std::io::Error),
}

type Result<T> = std::result::Result<T, IdentityError>;

/// What a certificate lets its holder be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A machine that keeps sprites and answers the Host's verbs.
    Host,
    /// An API server, which asks hosts.
    Server,
}

/// The cluster's certificate authority.
pub struct ClusterCa {
    cluster: String,
    cert_pem: String,
    key: KeyPair,
}

/// One machine's certificate, its key and the authority it trusts.
#[derive(Clone)]
pub struct Identity {
    pub role: Role,
    pub chain_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// The files of an identity in its folder.
const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// The files of an authority in its folder.
const AUTHORITY_KEY_FILE: &str = "ca-key.pem";
const CLUSTER_FILE: &str = "cluster";

fn read(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| IdentityError::File(format!("cannot read {}", path.display()), e))
}

/// Writes `text` to `dir/file`, readable by its owner only when `secret`;
/// whole or not at all.
fn write(dir: &std::path::Path, file: &str, text: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(file);
    let partial = dir.join(format!(".{file}.partial"));
    let fail = |e| IdentityError::File(format!("cannot write {}", path.display()), e);
    std::fs::create_dir_all(dir).map_err(fail)?;
    // One left by an interrupted write may have other permissions.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&partial)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&partial, &path).map_err(fail)
}

/// The name a host's certificate is for.
pub fn host_dns_name(host: &str) -> String {
    format!("{host}.hosts.sprites.internal")
}

fn ca_params(cluster: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("sprites cluster {cluster}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

impl ClusterCa {
    /// A new authority for cluster `cluster`, valid for about ten years.
    pub fn generate(cluster: &str) -> Result<ClusterCa> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(cluster)?;
        let now = time_now();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + std::time::Duration::from_secs(10 * 365 * 86_400);
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(ClusterCa {
            cluster: cluster.to_string(),
            cert_pem,
            key,
        })
    }

    /// The authority of cluster `cluster` as [`generate`](Self::generate)
    /// made it, from its certificate and key; refused unless what it
    /// issues verifies against that certificate (a key or a cluster name
    /// not its own would otherwise fail only at handshakes).
    pub fn load(cluster: &str, cert_pem: &str, key_pem: &str) -> Result<ClusterCa> {
        CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| IdentityError::Pem("the authority's certificate", "certificate"))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|_| IdentityError::Pem("the authority's key", "private key"))?;
        let ca = ClusterCa {
            cluster: cluster.to_string(),
            cert_pem: cert_pem.to_string(),
            key,
        };
        let probe = ca.issue(Role::Host, "probe")?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(probe.roots()?),
            provider(),
        )
        .build()?;
        let chain = probe.chain()?;
        verifier
            .verify_server_cert(&chain[0], &[], &server_name("probe")?, &[], UnixTime::now())
            .map_err(|e| IdentityError::NotTheAuthority(cluster.to_string(), e))?;
        Ok(ca)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Keeps it in folder `dir` (the key readable by its owner only).
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        write(dir, CLUSTER_FILE, &self.cluster, false)?;
        write(dir, CA_FILE, &self.cert_pem, false)?;
        write(dir, AUTHORITY_KEY_FILE, &self.key_pem(), true)
    }

    /// The authority [`save`](Self::save) kept in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<ClusterCa> {
        let cluster = read(&dir.join(CLUSTER_FILE))?;
        let cert = read(&dir.join(CA_FILE))?;
        ClusterCa::load(cluster.trim(), &cert, &read(&dir.join(AUTHORITY_KEY_FILE))?)
    }

    /// The authority's private key: keep it where only API servers read.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A new identity of `role` for the machine named `name`, valid for a
    /// year.
    pub fn issue(&self, role: Role, name: &str) -> Result<Identity> {
        if sprites_wire::SpriteName::parse(name).is_err() {
            return Err(IdentityError::Name(name.to_string()));
        }
        let key = KeyPair::generate()?;
        let (names, usage) = match role {
            Role::Host => (
                vec![host_dns_name(name)],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            Role::Server => (
                vec![format!("{name}.servers.sprites.internal")],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        };
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time_now();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + std::time::Duration::from_secs(365 * 86_400);
        let issuer = Issuer::new(ca_params(&self.cluster)?, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Identity {
            role,
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.cert_pem.clone(),
        })
    }
}

/// How far a machine's clock may be behind the authority's and still take
/// a certificate issued a moment ago.
const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(3600);

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The cryptography rustls uses here and in the server: *ring*, as the
/// rest of the build's TLS (the object store's client) does. rustls marks
/// it deprecated for want of post-quantum key exchange; aws-lc-rs has
/// that, at the price of a C library built with every clean build.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Identity {
    /// Keeps it in folder `dir`: `ca.pem`, `cert.pem` and `key.pem` (the
    /// key readable by its owner only).
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        write(dir, CA_FILE, &self.ca_pem, false)?;
        write(dir, CERT_FILE, &self.chain_pem, false)?;
        write(dir, KEY_FILE, &self.key_pem, true)
    }

    /// The identity of `role` [`save`](Self::save) kept in `dir`; its
    /// files are checked when it is used.
    pub fn open(dir: &std::path::Path, role: Role) -> Result<Identity> {
        Ok(Identity {
            role,
            chain_pem: read(&dir.join(CERT_FILE))?,
            key_pem: read(&dir.join(KEY_FILE))?,
            ca_pem: read(&dir.join(CA_FILE))?,
        })
    }

    fn chain(&self) -> Result<Vec<CertificateDer<'static>>> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| IdentityError::Pem("the certificate", "certificate"))?;
        if chain.is_empty() {
            return Err(IdentityError::Pem("the certificate", "certificate"));
        }
        Ok(chain)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| IdentityError::Pem("the key", "private key"))
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|_| IdentityError::Pem("the authority's certificate", "certificate"))?;
        roots.add(ca)?;
        Ok(roots)
    }

    fn must_be(&self, role: Role) -> Result<()> {
        if self.role != role {
            return Err(IdentityError::Role(self.role, role));
        }
        Ok(())
    }

    /// TLS for a host's listener: it presents this (host) identity and
    /// admits only peers with an API server's certificate from the same
    /// authority.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        self.must_be(Role::Host)?;
        self.any_acceptor()
    }

    fn any_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider())
                .build()?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain()?, self.key()?)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// TLS to a host, presenting this (API server) identity;
    /// [`server_name`] says which host the peer must prove to be.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector> {
        self.must_be(Role::Server)?;
        self.any_connector()
    }

    fn any_connector(&self) -> Result<tokio_rustls::TlsConnector> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain()?, self.key()?)?;
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// The TLS name of host `host`, for [`Identity::connector`].
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host_dns_name(host)).map_err(|_| IdentityError::Name(host.to_string()))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A host named `name` answering "pong" to "ping" on loopback, as
    /// `identity`; its address.
    async fn host(identity: &Identity) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Whatever its role: the tests also try one posing as a host.
        let acceptor = identity.any_acceptor().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut ping = [0u8; 4];
                    if tls.read_exact(&mut ping).await.is_ok() && &ping == b"ping" {
                        let _ = tls.write_all(b"pong").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    /// Whether a ping through `connector` to the host at `addr`, meant
    /// for host `name`, comes back as a pong.
    async fn pong(
        connector: &tokio_rustls::TlsConnector,
        addr: std::net::SocketAddr,
        name: &str,
    ) -> bool {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let Ok(mut tls) = connector.connect(server_name(name).unwrap(), tcp).await else {
            return false;
        };
        let mut pong = [0u8; 4];
        tls.write_all(b"ping").await.is_ok()
            && tls.read_exact(&mut pong).await.is_ok()
            && &pong == b"pong"
    }

    #[tokio::test]
    async fn hosts_admit_only_the_api_servers_of_their_cluster() {
        let ca = ClusterCa::generate("c1").unwrap();
        let h1 = ca.issue(Role::Host, "h1").unwrap();
        let addr = host(&h1).await;
        let api = ca.issue(Role::Server, "api1").unwrap();
        assert!(pong(&api.connector().unwrap(), addr, "h1").await);

        // The authority, stored and loaded again, issues identities as good.
        let again = ClusterCa::load("c1", ca.cert_pem(), &ca.key_pem()).unwrap();
        let api2 = again.issue(Role::Server, "api2").unwrap();
        assert!(pong(&api2.connector().unwrap(), addr, "h1").await);

        // Another cluster's API server: refused.
        let other = ClusterCa::generate("c2").unwrap();
        let stranger = other.issue(Role::Server, "api1").unwrap();
        let mut trusting = stranger.clone();
        trusting.ca_pem = ca.cert_pem().to_string();
        assert!(!pong(&trusting.connector().unwrap(), addr, "h1").await);

        // No certificate at all: refused.
        let anonymous = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(api.roots().unwrap())
            .with_no_client_auth();
        let anonymous = tokio_rustls::TlsConnector::from(Arc::new(anonymous));
        assert!(!pong(&anonymous, addr, "h1").await);

        // A host's own identity cannot drive another host, even in a
        // connector it made itself.
        let h2 = ca.issue(Role::Host, "h2").unwrap();
        assert!(matches!(h2.connector(), Err(IdentityError::Role(..))));
        assert!(!pong(&h2.any_connector().unwrap(), addr, "h1").await);
    }

    #[tokio::test]
    async fn api_servers_reach_only_the_host_they_mean() {
        let ca = ClusterCa::generate("c1").unwrap();
        let api = ca.issue(Role::Server, "api1").unwrap();
        let connector = api.connector().unwrap();
        let h1 = host(&ca.issue(Role::Host, "h1").unwrap()).await;
        assert!(pong(&connector, h1, "h1").await);
        // h1 answering where h2 was meant: refused.
        assert!(!pong(&connector, h1, "h2").await);
        // An API server's identity cannot pass for a host.
        let server = ca.issue(Role::Server, "h3").unwrap();
        assert!(matches!(server.acceptor(), Err(IdentityError::Role(..))));
        let posing = host(&server).await;
        assert!(!pong(&connector, posing, "h3").await);
        // Nor can another cluster's host.
        let other = ClusterCa::generate("c2").unwrap();
        let foreign = host(&other.issue(Role::Host, "h1").unwrap()).await;
        assert!(!pong(&connector, foreign, "h1").await);
    }

    #[test]
    fn names_and_keys_are_checked() {
        let ca = ClusterCa::generate("c1").unwrap();
        assert!(matches!(
            ca.issue(Role::Host, "Not A Name"),
            Err(IdentityError::Name(_))
        ));
        assert!(matches!(
            ClusterCa::load("c1", "not pem", &ca.key_pem()),
            Err(IdentityError::Pem(..))
        ));
        assert!(matches!(
            ClusterCa::load("c1", ca.cert_pem(), "not pem"),
            Err(IdentityError::Pem(..))
        ));
        // Another authority's key, or another cluster's name: refused.
        let other = ClusterCa::generate("c2").unwrap();
        assert!(matches!(
            ClusterCa::load("c1", ca.cert_pem(), &other.key_pem()),
            Err(IdentityError::NotTheAuthority(..))
        ));
        assert!(matches!(
            ClusterCa::load("c2", ca.cert_pem(), &ca.key_pem()),
            Err(IdentityError::NotTheAuthority(..))
        ));
    }
}
