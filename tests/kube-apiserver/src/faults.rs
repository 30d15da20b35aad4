//! Fault injection and the request log that tests assert on.

use std::sync::Mutex;
use std::time::Duration;

/// What an injected fault does to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a matching `Status` body (500, 503, 504, ...).
    Status(u16),
    /// Answer 429 TooManyRequests with `Retry-After: <secs>`.
    TooManyRequests {
        /// Seconds for the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// Hold the request this long, then serve it normally.
    Delay(Duration),
    /// Close the connection without answering (the client sees a transport error).
    Disconnect,
}

/// A fault rule: which requests it hits and what it does to them.
#[derive(Debug, Clone)]
pub struct Fault {
    method: Option<String>,
    path_contains: Option<String>,
    nth: u64,
    times: u64,
    action: FaultAction,
    seen: u64,
    fired: u64,
}

impl Fault {
    /// Fail matching requests with `code` (a `Status` body with the right reason).
    pub fn status(code: u16) -> Fault {
        Fault::new(FaultAction::Status(code))
    }

    /// Answer 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Fault {
        Fault::new(FaultAction::TooManyRequests { retry_after_secs })
    }

    /// Drop the connection of matching requests without an answer.
    pub fn disconnect() -> Fault {
        Fault::new(FaultAction::Disconnect)
    }

    /// Delay matching requests.
    pub fn delay(d: Duration) -> Fault {
        Fault::new(FaultAction::Delay(d))
    }

    fn new(action: FaultAction) -> Fault {
        Fault {
            method: None,
            path_contains: None,
            nth: 1,
            times: 1,
            action,
            seen: 0,
            fired: 0,
        }
    }

    /// Only requests with this HTTP method (e.g. `PATCH`).
    pub fn method(mut self, m: &str) -> Fault {
        self.method = Some(m.to_ascii_uppercase());
        self
    }

    /// Only requests whose path contains this text (e.g. `/deployments/web`).
    pub fn path_contains(mut self, s: &str) -> Fault {
        self.path_contains = Some(s.to_string());
        self
    }

    /// Start at the `n`-th matching request (1-based, counted from when the rule is added).
    pub fn nth(mut self, n: u64) -> Fault {
        self.nth = n.max(1);
        self
    }

    /// Hit this many consecutive matching requests (default 1); `u64::MAX` for all of them.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = n;
        self
    }
}

/// The fault rules of one server; cheap to share.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<FaultsInner>,
}

#[derive(Debug, Default)]
struct FaultsInner {
    rules: Vec<Fault>,
    latency: Duration,
    fired: u64,
}

impl Faults {
    /// Add a fault rule.
    pub fn inject(&self, f: Fault) {
        self.lock().rules.push(f);
    }

    /// Fail the `n`-th request from now (any method and path) with `code`.
    pub fn fail_nth(&self, n: u64, code: u16) {
        self.inject(Fault::status(code).nth(n));
    }

    /// Add this latency to every request.
    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    /// Remove every rule and the latency.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.rules.clear();
        g.latency = Duration::ZERO;
    }

    /// How many requests a fault has hit so far.
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latency to add and the faults that hit this request.
    pub(crate) fn check(&self, method: &str, path: &str) -> (Duration, Vec<FaultAction>) {
        let mut g = self.lock();
        let mut hits = Vec::new();
        for r in g.rules.iter_mut() {
            if r.method.as_deref().is_some_and(|m| m != method) {
                continue;
            }
            if r.path_contains
                .as_deref()
                .is_some_and(|p| !path.contains(p))
            {
                continue;
            }
            r.seen += 1;
            if r.seen >= r.nth && r.fired < r.times {
                r.fired += 1;
                hits.push(r.action.clone());
            }
        }
        g.fired += hits
            .iter()
            .filter(|a| !matches!(a, FaultAction::Delay(_)))
            .count() as u64;
        (g.latency, hits)
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string (may be empty).
    pub query: String,
    /// Content-Type header, if any.
    pub content_type: Option<String>,
    /// User-Agent header, if any.
    pub user_agent: Option<String>,
    /// HTTP status of the answer (0 when an injected disconnect dropped it).
    pub status: u16,
    /// Whether it was a `dryRun=All` request.
    pub dry_run: bool,
    /// Whether it carried an `Authorization: Bearer` header.
    pub authenticated: bool,
    /// When the server started acting on it (after faults and the body):
    /// whatever it changed, it changed between `started` and `finished`.
    pub started: std::time::Instant,
    /// When the server had its answer.
    pub finished: std::time::Instant,
}

impl RequestRecord {
    /// A write that could change state: any method but GET/HEAD/OPTIONS, not a dry run.
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS") && !self.dry_run
    }
}
