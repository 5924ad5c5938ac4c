//! A client-side rate limiter per service and region: when AWS throttles a good share of what
//! plinth sends, plinth sends less, for every step and every environment at once.
//!
//! Why not the SDK's adaptive retry mode: its limiter measures the send rate from zero, so
//! the first throttle of a short command drops the rate to its floor of half a request per
//! second, and a retry costs five tokens there, ten seconds of waiting each. A plan that
//! makes forty calls then takes minutes. This one reacts to the *share* of answers that are
//! throttling, over a window of enough answers to tell a storm from chance: a sporadic
//! throttle is retried with backoff by the SDK and slows nothing else; a storm (a quarter of
//! forty answers or more) limits the rate to what got through, and the rate grows back
//! while answers come through unthrottled.
//!
//! Each service also has a number of requests it may have in flight at once, from what AWS
//! documents for it ([`requests_at_once`]): many for DynamoDB and S3, few for Route 53. A
//! storm halves it (down to one), calm windows double it back. This, not the command's
//! `--parallelism`, is what bounds the load on each API: steps of a throttled service wait
//! for their turn without keeping the others from AWS.
//!
//! A request takes its place among those in flight first, in the order requests came
//! (first come, first served: none is passed over until its call times out), then waits
//! for a token with it. One that gives up waiting leaves nothing behind to delay the
//! others.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Answers are judged over windows at least this long and this many answers large: at a
/// random 8% of throttling, 10 of 40 throttled happens once in hundreds of windows.
const WINDOW: Duration = Duration::from_secs(1);
const MIN_ANSWERS: u32 = 40;
/// The share of throttled answers in a window that means "too fast".
const STORM: f64 = 0.25;
/// Under this share a window counts as calm and the rate grows.
const CALM: f64 = 0.1;
/// A storm limits the rate to this share of what got through.
const MARGIN: f64 = 0.8;
/// The rate never goes below this (requests per second).
const FLOOR: f64 = 2.0;
/// A calm window lets the rate grow by this factor; once it passes CEILING the limit is
/// lifted.
const GROWTH: f64 = 1.5;
const CEILING: f64 = 500.0;

/// The error codes with which AWS services say "slow down", in any protocol.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "EC2ThrottledException",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
];

/// How many requests a service may have in flight at once in one account and region, when
/// nothing is throttled. From AWS's published limits: EC2 refills its bucket of mutating
/// calls at 5 a second (non-mutating at 20), Route 53 answers five requests a second per
/// account, ACM and KMS a handful of creates a second; DynamoDB's control plane takes 500
/// table operations at once and S3 thousands of requests a second per prefix.
pub fn requests_at_once(service: &str) -> u32 {
    match service {
        "dynamodb" | "s3" => 64,
        "route53" => 2,
        "acm" | "kms" | "iam" | "tagging" => 4,
        "cloudfront" | "lambda" | "logs" | "autoscaling" | "elasticache" => 8,
        _ => 16,
    }
}

/// How one service in one region is being paced.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<State>,
    /// One permit per request that may be in flight now.
    places: Semaphore,
}

impl Default for RateLimiter {
    fn default() -> RateLimiter {
        RateLimiter::new(requests_at_once(""))
    }
}

/// A request's place among those in flight, given back when it is dropped (or given up,
/// when fewer may be in flight than when it was taken).
#[derive(Debug)]
#[must_use = "the request is in flight only while its turn is held"]
pub struct Turn<'a> {
    limiter: &'a RateLimiter,
    place: Option<SemaphorePermit<'a>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Some(place) = self.place.take() else {
            return;
        };
        let mut state = self.limiter.state();
        if state.places_owed > 0 {
            state.places_owed -= 1;
            place.forget();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// How many requests may be in flight, and how many at most (the service's
    /// [`requests_at_once`]).
    allowed_in_flight: u32,
    most_in_flight: u32,
    /// Places to give up as requests in flight end, because a storm left fewer allowed
    /// than were taken.
    places_owed: u32,
    /// Requests per second allowed; `None` while nothing says to slow down.
    rate: Option<f64>,
    /// Tokens in the bucket (at most a second's worth), and when it was last filled.
    tokens: f64,
    filled: Option<Instant>,
    /// The window being judged: when its first answer came, and what came.
    window_started: Option<Instant>,
    answered: u32,
    throttled: u32,
    /// Totals, for `--stats`.
    throttled_total: u64,
    waited: Duration,
}

impl State {
    /// Takes a token, or says how long until there is one.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let rate = self.rate?;
        let filled = self.filled.unwrap_or(now);
        let capacity = rate.max(1.0);
        self.tokens = (self.tokens + (now - filled).as_secs_f64() * rate).min(capacity);
        self.filled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

impl RateLimiter {
    /// A limiter that lets `most_in_flight` requests be in flight at once while AWS is calm.
    pub fn new(most_in_flight: u32) -> RateLimiter {
        let most_in_flight = most_in_flight.max(1);
        RateLimiter {
            state: Mutex::new(State {
                allowed_in_flight: most_in_flight,
                most_in_flight,
                ..State::default()
            }),
            places: Semaphore::new(most_in_flight as usize),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current limit in requests per second, `None` when there is none.
    pub fn rate(&self) -> Option<f64> {
        self.state().rate
    }

    /// Throttled answers seen so far, and the time requests spent waiting for their turn.
    pub fn totals(&self) -> (u64, Duration) {
        let state = self.state();
        (state.throttled_total, state.waited)
    }

    /// How many requests may be in flight now.
    pub fn allowed_in_flight(&self) -> u32 {
        self.state().allowed_in_flight
    }

    /// Waits until this request may go: until fewer than the allowed number are in flight,
    /// then for a token. The request is in flight until the [`Turn`] is dropped.
    pub async fn wait_turn(&self) -> Turn<'_> {
        // The semaphore is never closed: `acquire` does not fail.
        let place = self.places.acquire().await.ok();
        let turn = Turn {
            limiter: self,
            place,
        };
        self.wait_token().await;
        turn
    }

    /// Lets `allowed` requests be in flight: places are added, or taken away now where
    /// they are free and as requests end where they are not.
    fn allow_in_flight(&self, state: &mut State, allowed: u32) {
        if allowed > state.allowed_in_flight {
            let more = allowed - state.allowed_in_flight;
            let repaid = more.min(state.places_owed);
            state.places_owed -= repaid;
            self.places.add_permits((more - repaid) as usize);
        } else {
            let fewer = state.allowed_in_flight - allowed;
            let forgotten = self.places.forget_permits(fewer as usize) as u32;
            state.places_owed += fewer - forgotten;
        }
        state.allowed_in_flight = allowed;
    }

    async fn wait_token(&self) {
        loop {
            let wait = {
                let mut state = self.state();
                let wait = state.take(Instant::now());
                if let Some(wait) = wait {
                    state.waited += wait;
                }
                wait
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Records one answer from AWS.
    pub fn answered(&self, throttled: bool) {
        let now = Instant::now();
        let mut state = self.state();
        let started = *state.window_started.get_or_insert(now);
        state.answered += 1;
        if throttled {
            state.throttled += 1;
            state.throttled_total += 1;
        }
        let elapsed = now - started;
        if elapsed < WINDOW || state.answered < MIN_ANSWERS {
            return;
        }
        let share = f64::from(state.throttled) / f64::from(state.answered);
        let got_through = f64::from(state.answered - state.throttled) / elapsed.as_secs_f64();
        if share >= STORM {
            let limit = (got_through * MARGIN).max(FLOOR);
            let rate = state.rate.map_or(limit, |r| r.min(limit)).max(FLOOR);
            tracing::info!(
                throttled = state.throttled,
                answered = state.answered,
                rate,
                "AWS is throttling: sending at most {rate:.1} requests a second"
            );
            if state.rate.is_none() {
                state.tokens = 1.0;
                state.filled = Some(now);
            }
            state.rate = Some(rate);
            let halved = (state.allowed_in_flight / 2).max(1);
            self.allow_in_flight(&mut state, halved);
        } else if share < CALM {
            state.rate = state.rate.map(|r| r * GROWTH).filter(|r| *r < CEILING);
            let doubled = (state.allowed_in_flight * 2).min(state.most_in_flight);
            self.allow_in_flight(&mut state, doubled);
        }
        state.window_started = None;
        state.answered = 0;
        state.throttled = 0;
    }
}

/// The error code of an AWS error answer in any of its protocols: the `x-amzn-ErrorType`
/// header (REST-JSON), the JSON body's `__type` (`ns#Code`), or the XML body's first
/// `<Code>`.
pub fn error_code(response: &HttpResponse) -> Option<String> {
    if let Some(header) = response.headers().get("x-amzn-errortype") {
        return Some(strip_code(header).to_string());
    }
    let body = std::str::from_utf8(response.body().bytes()?).ok()?;
    if let Some(rest) = body.split("\"__type\"").nth(1) {
        let value = rest.split('"').nth(1)?;
        return Some(strip_code(value).to_string());
    }
    let (_, rest) = body.split_once("<Code>")?;
    let (code, _) = rest.split_once("</Code>")?;
    Some(code.trim().to_string())
}

/// `com.amazonaws.dynamodb.v20120810#ThrottlingException` and `Code:http://…` name `Code`.
fn strip_code(value: &str) -> &str {
    let value = value.rsplit('#').next().unwrap_or(value);
    value.split(':').next().unwrap_or(value)
}

/// Whether an answer says "slow down".
pub fn is_throttling(response: &HttpResponse) -> bool {
    if response.status().as_u16() == 429 {
        return true;
    }
    if response.status().as_u16() < 400 {
        return false;
    }
    error_code(response).is_some_and(|code| THROTTLING_CODES.contains(&code.as_str()))
}

/// Feeds every answer of one client into its limiter.
#[derive(Debug)]
pub(crate) struct WatchAnswers(pub Arc<RateLimiter>);

impl Intercept for WatchAnswers {
    fn name(&self) -> &'static str {
        "plinth::WatchAnswers"
    }
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.answered(is_throttling(context.response()));
        Ok(())
    }
}

/// An HTTP client that waits for the limiter's turn before each attempt.
#[derive(Debug)]
pub(crate) struct PacedHttpClient {
    pub inner: SharedHttpClient,
    pub limiter: Arc<RateLimiter>,
}

impl HttpClient for PacedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            limiter: self.limiter.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        HttpConnectorFuture::new(async move {
            let _in_flight = limiter.wait_turn().await;
            inner.call(request).await
        })
    }
}
