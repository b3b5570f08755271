//! The XDMS client: conditional GETs of every `[xdms]` document each `poll_s`, the answers
//! fed to [`Documents`], a change handed to the supervisor as a new set of groups (applied like
//! a reload), the last good copies written to the cache file. With `[xdms] subscribe`, an
//! xcap-diff subscription (`super::follow`) wakes the loop at once for what a notice names.

use super::follow::{Kick, SubscriptionHandle, Wanted};
use super::store::{Applied, Documents};
use super::subscriber::{Subscriber, SubscriberSettings};
use crate::auth::DigestChallenge;
use crate::config::Config;
use crate::http::client::{self, ClientSettings, PooledClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH, WWW_AUTHENTICATE};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// The media type of an rls-services document (RFC 4826 §4.4).
const RLS_TYPE: &str = "application/rls-services+xml";

/// Longest wait between attempts while the XDMS fails: `poll_s` times 2 to this power.
const MAX_BACKOFF_SHIFT: u32 = 3;

/// Why the client could not start.
#[derive(Debug, Error)]
pub enum XdmsError {
    #[error("xdms.documents: {0:?} does not make a valid URL")]
    Url(String),
    #[error("xdms TLS roots: {0}")]
    Tls(String),
    #[error("xdms credentials are not a valid header value")]
    Credentials,
    #[error("xdms.subscribe: {0:?} is not a SIP URI")]
    Subscribe(String),
}

/// Why one fetch failed (a metric label each).
#[derive(Debug, Error)]
enum FetchError {
    #[error("no answer: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {0}")]
    Status(u16),
    #[error("document refused: {0}")]
    Invalid(#[from] super::RlsError),
}

impl FetchError {
    fn label(&self) -> &'static str {
        match self {
            FetchError::Unreachable(_) => "unreachable",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status(_) => "status",
            FetchError::Invalid(_) => "invalid",
        }
    }
}

/// What `/health` says about the XDMS.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HealthState {
    /// The last round reached every document (or nothing was tried yet).
    pub reachable: bool,
    /// Documents held (fetched or from the cache).
    pub documents: usize,
    /// Groups taken from them.
    pub groups: usize,
    /// Unix time of the last round without a failure.
    pub last_success_unix: Option<u64>,
    /// Rounds failed in a row.
    pub consecutive_failures: u32,
    /// The last failure, for the operator.
    pub last_error: Option<String>,
    /// A round succeeded, or the cache file gave documents: the groups are known.
    pub loaded: bool,
    /// The xcap-diff subscription is established (always false without `subscribe`).
    pub subscribed: bool,
}

/// The client's state, shared with `/health` and `/ready`.
#[derive(Debug)]
pub struct XdmsHealth {
    state: Mutex<HealthState>,
    /// When `/ready` stops waiting for the groups (`None`: never).
    grace_until: Option<Instant>,
}

impl XdmsHealth {
    /// The state of a client that started now with `ready_grace_s` = `grace` (0: none).
    pub fn new(grace: Duration) -> XdmsHealth {
        XdmsHealth {
            state: Mutex::new(HealthState {
                reachable: true,
                ..HealthState::default()
            }),
            grace_until: (!grace.is_zero()).then(|| Instant::now() + grace),
        }
    }

    pub fn snapshot(&self) -> HealthState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `/ready` says ready: the groups are loaded (a fetch or the cache), or the
    /// grace ran out (the focus then serves the file's groups until the XDMS answers).
    pub fn is_ready(&self) -> bool {
        self.snapshot().loaded || self.grace_until.is_some_and(|g| Instant::now() >= g)
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut HealthState)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// How the client authenticates to the XDMS.
enum Auth {
    None,
    /// `Authorization: Bearer`, sent with every request.
    Bearer(HeaderValue),
    /// User and password, answering the XDMS's challenge.
    Challenged {
        user: String,
        password: String,
        answer: Mutex<Answer>,
    },
}

/// What the last challenge asked for.
enum Answer {
    /// Nothing yet: the first request goes without credentials.
    Unknown,
    /// Digest with this challenge; its nonce used so many times (the next `nc`).
    Digest(DigestChallenge, u32),
    /// Basic (only over https: the password is not sent in the clear).
    Basic(HeaderValue),
}

impl Auth {
    /// The `Authorization` value for a GET of `uri`, if any.
    fn header(&self, uri: &hyper::Uri) -> Option<HeaderValue> {
        match self {
            Auth::None => None,
            Auth::Bearer(v) => Some(v.clone()),
            Auth::Challenged {
                user,
                password,
                answer,
            } => match &mut *answer.lock().unwrap_or_else(PoisonError::into_inner) {
                Answer::Unknown => None,
                Answer::Basic(v) => Some(v.clone()),
                Answer::Digest(c, nc) => {
                    *nc = nc.saturating_add(1);
                    let path = uri.path_and_query().map_or("/", |p| p.as_str());
                    let cnonce = format!("{:016x}", rand::random::<u64>());
                    let value = c.authorization(user, password, "GET", path, *nc, &cnonce);
                    HeaderValue::from_str(&value).ok().map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                }
            },
        }
    }

    /// Learns from a `401`'s challenges; true when the request is worth sending again.
    fn learn(&self, challenges: &[String], uri: &hyper::Uri) -> bool {
        let Auth::Challenged {
            user,
            password,
            answer,
        } = self
        else {
            return false;
        };
        let mut answer = answer.lock().unwrap_or_else(PoisonError::into_inner);
        // SHA-256 before MD5 (RFC 7616 §3.7: the strongest the client supports).
        let mut digests: Vec<DigestChallenge> = challenges
            .iter()
            .filter_map(|c| DigestChallenge::parse(c))
            .collect();
        digests.sort_by_key(|c| c.algorithm != crate::auth::Algorithm::Sha256);
        if let Some(c) = digests.into_iter().next() {
            // A nonce the XDMS just refused is not retried (unless it says it went stale).
            let again = match &*answer {
                Answer::Digest(old, _) => old.nonce != c.nonce || c.stale,
                _ => true,
            };
            *answer = Answer::Digest(c, 0);
            return again;
        }
        let basic = challenges.iter().any(|c| {
            c.trim_start()
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("basic"))
        });
        if basic {
            if uri.scheme_str() != Some("https") {
                tracing::warn!("the XDMS asks for basic authentication over plain http; the password is not sent");
                return false;
            }
            let pair = format!("{user}:{password}");
            let value = format!("Basic {}", crate::charging::base64(pair.as_bytes()));
            let fresh = !matches!(&*answer, Answer::Basic(_));
            if let Ok(mut v) = HeaderValue::from_str(&value) {
                v.set_sensitive(true);
                *answer = Answer::Basic(v);
                return fresh;
            }
        }
        false
    }
}

/// The poll loop's fixed parts.
struct Client {
    http: PooledClient,
    auth: Auth,
    timeout: Duration,
    /// Selector and URL of every document.
    documents: Vec<(String, hyper::Uri)>,
    limits: crate::body::resource_lists::ListLimits,
}

/// Where the groups read from the XDMS go: the supervisor's catalog. A trait, so the XDMS
/// client stays below the supervisor it feeds.
pub trait GroupCatalog: Send + Sync + 'static {
    /// Replaces every XDMS group, applied like a reload; returns how many live sessions were
    /// updated and how many are retiring (their group is gone).
    fn apply_xdms_groups(&self, groups: Vec<crate::config::GroupConfig>) -> (usize, usize);
    /// Where `/health` reads the client's state.
    fn watch_xdms_health(&self, health: Arc<XdmsHealth>);
    /// Where the NOTIFYs of the xcap-diff subscription go.
    fn watch_xdms_subscription(&self, handle: Arc<SubscriptionHandle>);
}

/// Starts the XDMS client for `config` (nothing when `[xdms]` is off): the cache file is read
/// first, so its groups are served before the first fetch.
pub fn spawn(
    config: &Config,
    supervisor: Arc<dyn GroupCatalog>,
    endpoint: crate::endpoint::Endpoint,
    cancel: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, XdmsError> {
    let x = &config.xdms;
    if !x.enabled() {
        return Ok(None);
    }
    let documents = x
        .documents
        .iter()
        .map(|d| {
            x.document_url(d)
                .parse::<hyper::Uri>()
                .map(|u| (d.clone(), u))
                .map_err(|_| XdmsError::Url(d.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = if config.tls.ca_file.is_empty() {
        None
    } else {
        let c = crate::transport::tls::client_config_from(&[config.tls.ca_file.as_str()])
            .map_err(|e| XdmsError::Tls(e.to_string()))?;
        Some(tokio_rustls::TlsConnector::from(c))
    };
    let auth = if !x.token.is_empty() {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", x.token))
            .map_err(|_| XdmsError::Credentials)?;
        v.set_sensitive(true);
        Auth::Bearer(v)
    } else if !x.user.is_empty() {
        Auth::Challenged {
            user: x.user.clone(),
            password: x.password.clone(),
            answer: Mutex::new(Answer::Unknown),
        }
    } else {
        Auth::None
    };
    let timeout = Duration::from_millis(x.timeout_ms);
    let client = Client {
        http: client::pooled(ClientSettings {
            tls,
            service: "xdms",
            idle_timeout: Duration::from_secs(x.poll_s.saturating_mul(2).max(1)),
            // One poller: one connection per document host is all it reuses.
            max_idle: 4,
            connect_timeout: timeout,
        }),
        auth,
        timeout,
        documents,
        limits: config.xml.list_limits(),
    };
    let health = Arc::new(XdmsHealth::new(Duration::from_secs(x.ready_grace_s)));
    supervisor.watch_xdms_health(health.clone());
    let mut docs = Documents::default();
    if !x.cache.is_empty() {
        match std::fs::read_to_string(&x.cache) {
            Ok(text) => {
                docs = Documents::from_cache(&text, &x.documents, &client.limits);
                let groups = docs.groups(config);
                tracing::info!(cache = %x.cache, documents = docs.len(), groups = groups.len(), "XDMS groups from the cache file");
                health.update(|h| {
                    h.documents = docs.len();
                    h.groups = groups.len();
                    h.loaded = !docs.is_empty();
                });
                supervisor.apply_xdms_groups(groups);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(cache = %x.cache, error = %e, "XDMS cache file unreadable"),
        }
    }
    metrics::gauge!("focus_xdms_documents").set(docs.len() as f64);
    let kick = Arc::new(Kick::default());
    if !x.subscribe.is_empty() {
        let subscriber = subscriber(config, &endpoint)?;
        let handle = super::follow::start(
            subscriber,
            endpoint,
            kick.clone(),
            health.clone(),
            cancel.clone(),
        );
        supervisor.watch_xdms_subscription(handle);
    }
    let config = config.clone();
    Ok(Some(tokio::spawn(async move {
        run(client, docs, config, supervisor, health, kick, cancel).await
    })))
}

/// The xcap-diff subscription of `config`: From the conference factory's URI, Contact the
/// focus's address of the family and transport the subscribe URI asks for.
fn subscriber(
    config: &Config,
    endpoint: &crate::endpoint::Endpoint,
) -> Result<Subscriber, XdmsError> {
    let x = &config.xdms;
    let target = crate::sip::Uri::parse(&x.subscribe)
        .ok()
        .filter(|u| u.is_sip())
        .ok_or_else(|| XdmsError::Subscribe(x.subscribe.clone()))?;
    let ip = target
        .host
        .as_ref()
        .and_then(crate::sip::Host::ip)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let transport = target
        .param("transport")
        .flatten()
        .map(str::to_ascii_lowercase);
    let protocol = match (
        target.scheme == crate::sip::Scheme::Sips,
        transport.as_deref(),
    ) {
        (true, _) | (_, Some("tls")) => crate::transport::Protocol::Tls,
        (_, Some("tcp")) => crate::transport::Protocol::Tcp,
        _ => crate::transport::Protocol::Udp,
    };
    let port = endpoint.transports().local_addr_for(protocol, ip).port();
    let host = endpoint.settings().advertised.for_ip(ip).with_port(port);
    let contact = match protocol {
        crate::transport::Protocol::Tls => format!("<sips:{host}>"),
        crate::transport::Protocol::Tcp => format!("<sip:{host};transport=tcp>"),
        crate::transport::Protocol::Udp => format!("<sip:{host}>"),
    };
    Ok(Subscriber::new(
        SubscriberSettings {
            target,
            from: format!(
                "<sip:{}@{}>",
                config.focus.factory_user, config.focus.domain
            ),
            contact,
            documents: x.documents.clone(),
            expires: x.subscribe_expires_s,
            retry: Duration::from_secs(x.subscribe_retry_s),
            root: x.root.clone(),
            limits: config.xml.list_limits(),
        },
        Instant::now(),
    ))
}

async fn run(
    client: Client,
    mut docs: Documents,
    config: Config,
    supervisor: Arc<dyn GroupCatalog>,
    health: Arc<XdmsHealth>,
    kick: Arc<Kick>,
    cancel: CancellationToken,
) {
    let poll = Duration::from_secs(config.xdms.poll_s);
    let mut wanted = Wanted::All;
    loop {
        let mut changed = false;
        let mut failure: Option<String> = None;
        let round = client
            .documents
            .iter()
            .filter(|(selector, _)| match &wanted {
                Wanted::All => true,
                Wanted::Some(set) => set.contains(selector),
            });
        for (selector, uri) in round {
            match client.fetch(selector, uri, &mut docs).await {
                Ok(Applied::Changed) => changed = true,
                Ok(Applied::Same) => {}
                Err(e) => {
                    metrics::counter!("focus_xdms_fetch_failures_total", "reason" => e.label())
                        .increment(1);
                    tracing::warn!(document = %selector, error = %e, "XDMS fetch failed; the last good copy stays");
                    // A bad document is the XDM client's fault, not an outage: counted and
                    // logged, but the XDMS answered.
                    if !matches!(e, FetchError::Invalid(_)) {
                        failure = Some(format!("{selector}: {e}"));
                    }
                }
            }
        }
        if changed {
            let groups = docs.groups(&config);
            let count = groups.len();
            let (updated, retiring) = supervisor.apply_xdms_groups(groups);
            tracing::info!(
                groups = count,
                sessions_updated = updated,
                sessions_retiring = retiring,
                "XDMS groups applied"
            );
            health.update(|h| h.groups = count);
            write_cache(&config.xdms.cache, &docs).await;
        }
        metrics::gauge!("focus_xdms_documents").set(docs.len() as f64);
        let failures = match failure {
            None => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                metrics::gauge!("focus_xdms_last_success_timestamp_seconds").set(now as f64);
                health.update(|h| {
                    h.reachable = true;
                    h.consecutive_failures = 0;
                    h.last_success_unix = Some(now);
                    h.documents = docs.len();
                    if !h.loaded {
                        tracing::info!(documents = docs.len(), "XDMS groups loaded");
                    }
                    h.loaded = true;
                });
                0
            }
            Some(e) => {
                let mut n = 0;
                health.update(|h| {
                    h.reachable = false;
                    h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                    h.last_error = Some(e);
                    h.documents = docs.len();
                    n = h.consecutive_failures;
                });
                n
            }
        };
        // Back off while the XDMS fails: 1, 2, 4, 8 polls.
        let polls = 1u32 << failures.min(MAX_BACKOFF_SHIFT);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(poll * polls) => wanted = Wanted::All,
            // A notice in the xcap-diff subscription: fetch what it names now.
            w = kick.wait() => wanted = w,
        }
    }
}

impl Client {
    /// One conditional GET of `selector`, applied to `docs`; sent again once when the XDMS
    /// challenges credentials the client has.
    async fn fetch(
        &self,
        selector: &str,
        uri: &hyper::Uri,
        docs: &mut Documents,
    ) -> Result<Applied, FetchError> {
        let mut attempt = 0;
        let (status, etag, body) = loop {
            attempt += 1;
            let (status, etag, challenges, body) = self.get(selector, uri, docs).await?;
            if status == 401 && attempt == 1 && self.auth.learn(&challenges, uri) {
                continue;
            }
            break (status, etag, body);
        };
        match status {
            200 => Ok(docs.apply(selector, etag, &body, &self.limits)?),
            304 => Ok(Applied::Same),
            404 => {
                tracing::info!(
                    document = selector,
                    "XDMS document does not exist (404): its groups go"
                );
                Ok(docs.remove(selector))
            }
            other => Err(FetchError::Status(other)),
        }
    }
}

impl Client {
    /// One GET: status, ETag, the `WWW-Authenticate` values and the body (bounded).
    async fn get(
        &self,
        selector: &str,
        uri: &hyper::Uri,
        docs: &Documents,
    ) -> Result<(u16, Option<String>, Vec<String>, Bytes), FetchError> {
        let mut request = hyper::Request::get(uri.clone()).header(ACCEPT, RLS_TYPE);
        if let Some(etag) = docs
            .etag(selector)
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(auth) = self.auth.header(uri) {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| FetchError::Unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let etag = response
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let challenges: Vec<String> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .take(8)
                .map(str::to_owned)
                .collect();
            // One byte over the bound is enough to refuse the document as too large.
            let limit = self.limits.max_bytes;
            let body = Limited::new(response.into_body(), limit + 1)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        // Too large is the document's fault, not the XDMS's availability.
                        FetchError::Invalid(super::RlsError::TooLarge {
                            size: limit + 1,
                            limit,
                        })
                    } else {
                        FetchError::Unreachable(e.to_string())
                    }
                })?
                .to_bytes();
            Ok::<_, FetchError>((status, etag, challenges, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }
}

/// Writes the cache file whole (a temporary file renamed over it), so a crash leaves the old
/// or the new copy, never half of one.
async fn write_cache(path: &str, docs: &Documents) {
    if path.is_empty() {
        return;
    }
    let tmp = format!("{path}.tmp");
    let text = docs.to_cache();
    let target = path.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &target)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    if let Err(e) = result {
        tracing::warn!(cache = %path, error = %e, "XDMS cache file not written");
    }
}
