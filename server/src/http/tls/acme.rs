//! Certificates from an ACME CA (RFC 8555) through `instant-acme`, one
//! name an order, validated by HTTP-01: the CA fetches
//! `http://NAME/.well-known/acme-challenge/TOKEN` from the server's plain
//! HTTP listener, which answers from [`Acme::challenge`].
//!
//! An order, in steps: the account (kept in the database per directory,
//! made once with the operator's e-mail); a new order for the name; for
//! its authorization, the HTTP-01 token and key authorization are put
//! where the HTTP listener finds them and the challenge is declared
//! ready; the order is polled until ready (the CA has fetched the token);
//! the tokens are taken down; a key and CSR are made (rcgen) and the order
//! finalized; the chain is polled for, parsed, and stored with its key.
//! One order at a time per name; at most `orders_per_hour` a rolling hour,
//! so nothing can make the server spend the CA's rate limits.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::store::{self, Issued, Secrets};
use crate::db::Db;
use crate::workers::metrics::Metrics;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How the server talks to its ACME CA.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    /// The directory URL.
    pub directory: String,
    /// The contact the CA may write to about the certificates.
    pub email: Option<String>,
    /// The root to trust for the directory's own TLS (a private CA's),
    /// instead of the system's.
    pub ca_root: Option<PathBuf>,
    /// Orders at most in any hour.
    pub orders_per_hour: usize,
}

/// The ACME client of a server.
pub struct Acme {
    settings: AcmeSettings,
    db: Db,
    secrets: Secrets,
    account: tokio::sync::OnceCell<Account>,
    /// HTTP-01 tokens being validated: the name each is for, and its key
    /// authorization.
    challenges: Mutex<HashMap<String, (String, String)>>,
    /// One lock per name: one order at a time for it.
    ordering: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When the orders of the last hour were placed.
    placed: Mutex<VecDeque<Instant>>,
    /// Names whose last order failed, and when: none is ordered again
    /// before [`RETRY_AFTER`], whoever asks.
    failed: Mutex<HashMap<String, Instant>>,
    metrics: Metrics,
}

/// The longest an order (or opening the account) may take, all its polls
/// included: the CA's client has no timeout of its own.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a name whose order failed waits before another.
pub const RETRY_AFTER: Duration = Duration::from_secs(300);

impl Acme {
    pub fn new(settings: AcmeSettings, db: Db, secrets: Secrets, metrics: Metrics) -> Acme {
        Acme {
            settings,
            db,
            secrets,
            account: tokio::sync::OnceCell::new(),
            challenges: Mutex::default(),
            ordering: Mutex::default(),
            placed: Mutex::default(),
            failed: Mutex::default(),
            metrics,
        }
    }

    /// The key authorization for an HTTP-01 `token` being validated.
    pub fn challenge(&self, token: &str) -> Option<String> {
        let challenges = self.challenges.lock().unwrap();
        challenges.get(token).map(|(_, auth)| auth.clone())
    }

    /// The stored certificate of `name` when it is valid and not due for
    /// renewal; otherwise a new one, ordered now (also when `renew`).
    pub async fn certificate(&self, name: &str, renew: bool) -> anyhow::Result<Issued> {
        let lock = self
            .ordering
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        // Another handshake, or the renewal, may have ordered it meanwhile.
        // A row whose key does not open (the replica key changed) is
        // ordered again, and replaced.
        match store::load(&self.db, &self.secrets, name).await {
            Ok(Some(issued)) => {
                let due = crate::db::now_ms() >= issued.renew_at_ms();
                if issued.valid_now() && !(renew && due) {
                    return Ok(issued);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(name, error = %format!("{e:#}"), "a stored certificate does not open: ordering another")
            }
        }
        if let Some(at) = self.failed.lock().unwrap().get(name) {
            if at.elapsed() < RETRY_AFTER {
                bail!(
                    "the last order for {name} failed {:?} ago: not again before {RETRY_AFTER:?}",
                    at.elapsed()
                );
            }
        }
        let ordered = tokio::time::timeout(ORDER_TIMEOUT, self.order(name)).await;
        let ordered = ordered.unwrap_or_else(|_| {
            Err(anyhow!(
                "the order for {name} took longer than {ORDER_TIMEOUT:?}"
            ))
        });
        let mut failed = self.failed.lock().unwrap();
        match &ordered {
            Ok(_) => failed.remove(name),
            Err(_) => failed.insert(name.to_string(), Instant::now()),
        };
        ordered
    }

    /// Places an order for `name` and waits for its certificate.
    async fn order(&self, name: &str) -> anyhow::Result<Issued> {
        self.count_order(name)?;
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(name.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .with_context(|| format!("a new order for {name}"))?;
        let _take_down = TakeDown(self, name);
        let ready = match self.put_up_challenges(&mut order, name).await {
            Ok(_) => order
                .poll_ready(&RetryPolicy::new().timeout(Duration::from_secs(90)))
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match ready? {
            OrderStatus::Ready => {}
            status => {
                let why = order.state().error.as_ref().map(|p| p.to_string());
                bail!(
                    "the CA did not validate {name} ({status:?}): {}",
                    why.unwrap_or_default()
                );
            }
        }
        let key_pem = order.finalize().await.context("finalize the order")?;
        let chain_pem = order
            .poll_certificate(&RetryPolicy::new().timeout(Duration::from_secs(90)))
            .await
            .context("the certificate")?;
        let issued = store::save(&self.db, &self.secrets, name, &chain_pem, &key_pem).await?;
        tracing::info!(name, "TLS certificate issued");
        Ok(issued)
    }

    /// Takes `name`'s HTTP-01 tokens down.
    fn take_down(&self, name: &str) {
        self.challenges
            .lock()
            .unwrap()
            .retain(|_, (of, _)| of != name);
    }

    /// Answers each pending authorization's HTTP-01 challenge and tells the
    /// CA it is ready.
    async fn put_up_challenges(
        &self,
        order: &mut instant_acme::Order,
        name: &str,
    ) -> anyhow::Result<()> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => bail!("the authorization for {name} is {status:?}"),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| anyhow!("the CA offers no HTTP-01 challenge for {name}"))?;
            let answer = challenge.key_authorization().as_str().to_string();
            self.challenges
                .lock()
                .unwrap()
                .insert(challenge.token.clone(), (name.to_string(), answer));
            challenge.set_ready().await?;
        }
        Ok(())
    }

    /// Counts an order against the hourly bound, or refuses it.
    fn count_order(&self, name: &str) -> anyhow::Result<()> {
        let mut placed = self.placed.lock().unwrap();
        let hour_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        while placed.front().is_some_and(|t| Some(*t) < hour_ago) {
            placed.pop_front();
        }
        if placed.len() >= self.settings.orders_per_hour {
            self.metrics.acme_refused();
            bail!(
                "no certificate for {name} now: {} orders were placed in the last hour, the most allowed",
                placed.len()
            );
        }
        placed.push_back(Instant::now());
        self.metrics.acme_ordered();
        Ok(())
    }

    /// The account at the directory: the one kept, else a new one.
    async fn account(&self) -> anyhow::Result<&Account> {
        self.account
            .get_or_try_init(|| async {
                let directory = &self.settings.directory;
                match store::account(&self.db, &self.secrets, directory).await {
                    Ok(Some(json)) => {
                        let credentials: AccountCredentials = serde_json::from_str(&json)?;
                        return Ok(self.builder()?.from_credentials(credentials).await?);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        directory,
                        error = %format!("{e:#}"),
                        "the stored ACME account does not open: making another"
                    ),
                }
                let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = self
                    .builder()?
                    .create(&new, directory.clone(), None)
                    .await
                    .with_context(|| format!("an account at {directory}"))?;
                let credentials = serde_json::to_string(&credentials)?;
                store::save_account(&self.db, &self.secrets, directory, &credentials).await?;
                tracing::info!(directory, "ACME account made");
                Ok(account)
            })
            .await
    }

    fn builder(&self) -> anyhow::Result<instant_acme::AccountBuilder> {
        Ok(match &self.settings.ca_root {
            Some(root) => Account::builder_with_root(root)
                .with_context(|| format!("trust {}", root.display()))?,
            None => Account::builder()?,
        })
    }
}

/// Takes an order's HTTP-01 tokens down when the order ends, however it
/// ends (done, failed, or dropped at its timeout).
struct TakeDown<'a>(&'a Acme, &'a str);

impl Drop for TakeDown<'_> {
    fn drop(&mut self) {
        self.0.take_down(self.1);
    }
}
