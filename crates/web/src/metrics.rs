//! `GET /metrics` in the OpenMetrics text format (Prometheus scrapes it): requests by
//! route pattern, method and status; request latency by route; OCSP answers by what
//! they said; mail sent and failed; and, read at each scrape, the CRL's age and time to
//! its nextUpdate, the `/ready` checks, certificates issued and revoked (from the
//! database, so every process and `certdesk issue` count), the audit checkpoint's age
//! and the database pool. Nothing in it is secret (no paths, addresses or names).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route pattern.
    pub route: String,
    /// GET, POST, ...
    pub method: String,
    /// HTTP status.
    pub status: u16,
}

/// Labels of a latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route pattern.
    pub route: String,
}

/// Labels of a readiness check.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// `database`, `crl`, `ocsp`, `signing`.
    pub check: String,
}

/// Labels of an OCSP answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OcspLabels {
    /// `good`, `revoked`, `unknown`, `several`, `malformed`, `unauthorized`,
    /// `internal_error`.
    pub status: String,
}

/// Labels of a mail.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    /// `sent` or `failed`.
    pub outcome: String,
}

/// Labels of the database pool's connections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `idle` or `in_use`.
    pub state: String,
}

/// The metrics of one `serve` process.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    ocsp: Family<OcspLabels, Counter>,
    mail: Family<MailLabels, Counter>,
    issued: Counter,
    revoked: Counter,
    crl_age: Gauge<f64, AtomicU64>,
    crl_next_update: Gauge<f64, AtomicU64>,
    checkpoint_age: Gauge<f64, AtomicU64>,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    ready: Family<CheckLabels, Gauge>,
    /// Scrapes set the database figures one at a time (counters follow the totals by
    /// the difference: two at once would both add it).
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("certdesk");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 12))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route pattern",
            latency.clone(),
        );
        let crl_age = Gauge::<f64, AtomicU64>::default();
        registry.register("crl_age_seconds", "Seconds since the current CRL's thisUpdate", crl_age.clone());
        let crl_next_update = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "crl_next_update_seconds",
            "Seconds until the current CRL's nextUpdate (negative: past it)",
            crl_next_update.clone(),
        );
        let ready = Family::<CheckLabels, Gauge>::default();
        registry.register("ready", "The checks of GET /ready: 1 fine, 0 not", ready.clone());
        let ocsp = Family::<OcspLabels, Counter>::default();
        registry.register("ocsp_responses", "OCSP answers by what they said", ocsp.clone());
        let mail = Family::<MailLabels, Counter>::default();
        registry.register("mail", "Mails handed to the transport: sent or failed", mail.clone());
        let issued = Counter::default();
        registry.register(
            "certificates_issued",
            "Certificates issued, from the database (every process and the command line)",
            issued.clone(),
        );
        let revoked = Counter::default();
        registry.register("certificates_revoked", "Certificates revoked, from the database", revoked.clone());
        let checkpoint_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "audit_checkpoint_age_seconds",
            "Seconds since an audit checkpoint was last mailed (since 1970 if never)",
            checkpoint_age.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database connections open, idle or in use", pool.clone());
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The most database connections the pool opens", pool_max.clone());
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            ocsp,
            mail,
            issued,
            revoked,
            crl_age,
            crl_next_update,
            checkpoint_age,
            pool,
            pool_max,
            ready,
            scrape: Mutex::new(()),
        }
    }

    /// Counts an OCSP answer.
    pub fn record_ocsp(&self, outcome: certdesk_core::ports::OcspOutcome) {
        self.ocsp.get_or_create(&OcspLabels { status: outcome.name().into() }).inc();
    }

    /// Counts a mail handed to the transport.
    pub fn record_mail(&self, sent: bool) {
        self.mail.get_or_create(&MailLabels { outcome: if sent { "sent" } else { "failed" }.into() }).inc();
    }

    /// Sets what the database says (at a scrape).
    fn set_figures(&self, figures: &certdesk_core::ports::ServiceFigures, now: i64) {
        // Counters only go up: they follow the database's totals.
        self.issued.inc_by(figures.issued.saturating_sub(self.issued.get()));
        self.revoked.inc_by(figures.revoked.saturating_sub(self.revoked.get()));
        self.checkpoint_age.set((now - figures.last_checkpoint_at.unwrap_or(0)) as f64);
        let idle = i64::from(figures.pool_idle);
        self.pool.get_or_create(&PoolLabels { state: "idle".into() }).set(idle);
        self.pool.get_or_create(&PoolLabels { state: "in_use".into() }).set(i64::from(figures.pool_size) - idle);
        self.pool_max.set(i64::from(figures.pool_max));
    }

    /// Counts an answered request.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route: route.into(), method: method.into(), status }).inc();
        self.latency.get_or_create(&RouteLabels { route: route.into() }).observe(seconds);
    }

    /// The text to serve, with the scrape-time values set first.
    pub fn render(
        &self,
        crl: Option<(i64, i64)>,
        now: i64,
        checks: &[certdesk_core::ports::ReadinessCheck],
        figures: Option<&certdesk_core::ports::ServiceFigures>,
    ) -> Result<String, std::fmt::Error> {
        if let Some(figures) = figures {
            let _one_at_a_time = match self.scrape.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            self.set_figures(figures, now);
        }
        if let Some((this_update, next_update)) = crl {
            self.crl_age.set((now - this_update) as f64);
            self.crl_next_update.set((next_update - now) as f64);
        }
        for check in checks {
            self.ready.get_or_create(&CheckLabels { check: check.name.into() }).set(i64::from(check.ok));
        }
        let mut text = String::new();
        let registry = match self.registry.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// A mailer that counts what its transport accepted and refused (`certdesk_mail_total`).
#[derive(Debug)]
pub struct CountingMailer {
    inner: std::sync::Arc<dyn certdesk_desk::mail::Mailer>,
    metrics: std::sync::Arc<Metrics>,
}

impl CountingMailer {
    /// Counts the mails of `inner` in `metrics`.
    pub fn new(inner: std::sync::Arc<dyn certdesk_desk::mail::Mailer>, metrics: std::sync::Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl certdesk_desk::mail::Mailer for CountingMailer {
    fn send<'a>(&'a self, mail: &'a certdesk_desk::mail::Mail) -> certdesk_desk::mail::SendFuture<'a> {
        Box::pin(async move {
            let result = self.inner.send(mail).await;
            self.metrics.record_mail(result.is_ok());
            result
        })
    }
}
