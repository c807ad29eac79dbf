//! `GET /metrics` in the OpenMetrics text format (Prometheus scrapes it): requests by
//! route pattern, method and status; request latency by route; and, read at each
//! scrape, the CRL's age and time to its nextUpdate and the `/ready` checks. Nothing in
//! it is secret (no paths, no addresses, no names).

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

/// The metrics of one `serve` process.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    crl_age: Gauge<f64, AtomicU64>,
    crl_next_update: Gauge<f64, AtomicU64>,
    ready: Family<CheckLabels, Gauge>,
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
        Self { registry: Mutex::new(registry), requests, latency, crl_age, crl_next_update, ready }
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
    ) -> Result<String, std::fmt::Error> {
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
