//! SDK configuration and one client per service and region, created on first use.
//!
//! Every client is made for AWS at scale: calls are retried far past the SDK's default of
//! three attempts, with exponential backoff and full jitter, within a time budget; a storm of
//! throttling slows every caller of that service and region down (one [`RateLimiter`] per
//! account, service and region, shared by every step and every environment of a roster in
//! that account); and no call
//! can hang, because connecting and waiting for an answer have limits.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use plinth_core::resource::{ErrorKind, ResourceError, ResourceResult};

use crate::rate_limit::{requests_at_once, PacedHttpClient, RateLimiter, WatchAnswers};

/// Counts every SDK call plinth makes, by `Service.Operation`, for `--stats` and benchmarks,
/// and the attempts they took (a retried call is one call of several attempts).
#[derive(Debug, Default)]
pub struct CallStats {
    total: AtomicU64,
    attempts: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
}

impl CallStats {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    /// Requests sent, retries included.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.by_operation
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
    fn record(&self, operation: String) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.by_operation.lock() {
            *map.entry(operation).or_default() += 1;
        }
    }
}

#[derive(Debug)]
struct CountCalls(Arc<CallStats>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "plinth::CountCalls"
    }
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        self.0.record(operation);
        Ok(())
    }
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Tells whether an attempt of one call ended without any answer (the connection closed or
/// reset, or the answer never came): AWS may have done the work, and the SDK sent the request
/// again. A create that then meets "already exists" made the resource itself.
///
/// ```ignore
/// let unanswered = Unanswered::default();
/// client.create_bucket().customize().interceptor(unanswered.clone()).send().await;
/// if unanswered.seen() { /* an earlier attempt may have created it */ }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Unanswered(Arc<AtomicBool>);

impl Unanswered {
    pub fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for Unanswered {
    fn name(&self) -> &'static str {
        "plinth::Unanswered"
    }
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // An attempt that failed without any response, not even an error status. (The
        // request itself is no longer in the context once it was sent.)
        let failed = matches!(context.output_or_error(), Some(Err(_)));
        if failed && context.response().is_none() {
            self.0.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How hard plinth tries before a call fails. The defaults are what AWS at scale needs:
/// Terraform's AWS provider retries 25 times; a class of 30 bringing labs up at once is
/// throttled for minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// How long one call, all its attempts and backoffs together, may take.
    pub budget: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a request may wait for the first byte of its answer before it is given up
    /// and retried (a connection that never answers must not hang a run).
    pub read_timeout: Duration,
}

impl Default for Persistence {
    fn default() -> Persistence {
        Persistence {
            max_attempts: 25,
            budget: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// The first backoff after throttling (later ones double, with full jitter, up to
/// [`MAX_BACKOFF`]); other transient errors start from the SDK's 50 ms.
const THROTTLE_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Uploads of site files are requests whose body takes time to send before any answer can
/// come, so S3 waits longer for its first byte.
const S3_READ_TIMEOUT_FACTOR: u32 = 5;

impl Persistence {
    /// Retries with exponential backoff and full jitter (the SDK's standard mode; pacing is
    /// [`RateLimiter`]'s).
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(THROTTLE_BACKOFF)
            .with_max_backoff(MAX_BACKOFF)
    }

    pub fn timeout_config(&self, read_timeout: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(read_timeout)
            .operation_timeout(self.budget)
            .build()
    }

    /// The retry partition of one client, without the SDK's retry quota: that token bucket,
    /// spent by every retry, runs dry within a few hundred calls at a 15% fault rate and then
    /// stops retrying at all. The attempts and the budget bound retries instead, and the rate
    /// limiter keeps a throttled API from being hammered.
    pub fn retry_partition(service: &str, region: &str) -> RetryPartition {
        RetryPartition::custom(format!("plinth-{service}-{region}"))
            .token_bucket(TokenBucket::unlimited())
            .build()
    }
}

/// A role in another account to work in (`sts:AssumeRole`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleToAssume {
    pub role_arn: String,
    /// Shown in the account's CloudTrail as who did what.
    pub session_name: String,
    pub external_id: Option<String>,
}

impl RoleToAssume {
    /// A session name from its parts, within what STS takes (64 characters of letters,
    /// digits and `+=,.@_-`): other characters become `-`.
    pub fn session_name_of(parts: &[&str]) -> String {
        let joined = parts.join("-");
        joined
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                    true => c,
                    false => '-',
                },
            )
            .take(64)
            .collect()
    }
}

/// The region of [`Aws::home_region`] when none is configured.
const HOME_REGION_FALLBACK: &str = "us-east-1";

/// How to reach AWS: the SDK's own configuration chain, optionally pointed at an emulator.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// `--endpoint-url`; the SDK also honours `AWS_ENDPOINT_URL` by itself.
    pub endpoint_url: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// Attempts per call, retries included (`--max-attempts`); `None`: 25.
    pub max_attempts: Option<u32>,
    /// How long a call waits for an answer before it is retried (`--read-timeout`);
    /// `None`: a minute.
    pub read_timeout: Option<Duration>,
    /// The default region when the stack names one, so the SDK does not go looking for one
    /// (IMDS) that would not be used: every client is made for its resource's region.
    pub region: Option<String>,
}

macro_rules! service_clients {
    ($($field:ident, $insert:ident : $krate:ident $(with $tweak:path)?),* $(,)?) => {
        /// Lazily created SDK clients, one per service and region.
        #[derive(Default)]
        struct ClientCache {
            $($field: Mutex<HashMap<String, $krate::Client>>,)*
        }

        impl Aws {
            $(
                #[doc = concat!("The `", stringify!($krate), "` client for `region`.")]
                pub fn $field(&self, region: &str) -> $krate::Client {
                    let mut cache = match self.clients.$field.lock() {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    cache
                        .entry(region.to_string())
                        .or_insert_with(|| {
                            let limiter = self.limiter(stringify!($field), region);
                            let mut builder = $krate::config::Builder::from(&self.base)
                                .region(Region::new(region.to_string()))
                                .retry_partition(Persistence::retry_partition(stringify!($field), region))
                                .interceptor(CountCalls(self.stats.clone()))
                                .interceptor(WatchAnswers(limiter.clone()));
                            if let Some(inner) = self.base.http_client() {
                                builder = builder.http_client(PacedHttpClient { inner, limiter });
                            }
                            $(let builder = $tweak(builder, &self.base, &self.persistence);)?
                            $krate::Client::from_conf(builder.build())
                        })
                        .clone()
                }
            )*
        }

        /// Installs ready clients (SDK-level tests use mocked ones).
        impl Aws {
            $(
                #[doc = concat!("Uses `client` for `", stringify!($field), "` calls in `region`.")]
                pub fn $insert(&self, region: &str, client: $krate::Client) {
                    if let Ok(mut cache) = self.clients.$field.lock() {
                        cache.insert(region.to_string(), client);
                    }
                }
            )*
        }
    };
}

/// One account's rate limiters, by service and region.
type Limiters = Mutex<HashMap<(String, String), Arc<RateLimiter>>>;

/// The SDK configuration plinth runs with and the clients made from it.
pub struct Aws {
    base: SdkConfig,
    persistence: Persistence,
    clients: ClientCache,
    /// This connection's account's limiters.
    limiters: Arc<Limiters>,
    /// The limiters of the other accounts a roster reaches, by account id, shared by every
    /// connection to the same account: AWS throttles an account as a whole, however many
    /// students work in it.
    accounts_limiters: Arc<Mutex<HashMap<String, Arc<Limiters>>>>,
    pub stats: Arc<CallStats>,
    /// Checks done once per connection (see [`Aws::first_time`]).
    done_once: Mutex<std::collections::HashSet<String>>,
    /// The account the credentials belong to, once asked.
    account: Mutex<Option<String>>,
}

service_clients! {
    dynamodb, insert_dynamodb: aws_sdk_dynamodb,
    ec2, insert_ec2: aws_sdk_ec2,
    elasticache, insert_elasticache: aws_sdk_elasticache,
    sts, insert_sts: aws_sdk_sts,
    s3, insert_s3: aws_sdk_s3 with s3_settings,
    cloudfront, insert_cloudfront: aws_sdk_cloudfront,
    acm, insert_acm: aws_sdk_acm,
    iam, insert_iam: aws_sdk_iam,
    lambda, insert_lambda: aws_sdk_lambda,
    tagging, insert_tagging: aws_sdk_resourcegroupstagging,
    ssm, insert_ssm: aws_sdk_ssm,
    route53, insert_route53: aws_sdk_route53,
    kms, insert_kms: aws_sdk_kms,
    logs, insert_logs: aws_sdk_cloudwatchlogs,
    autoscaling, insert_autoscaling: aws_sdk_applicationautoscaling,
}

/// The SDK's own default HTTPS client (hyper, rustls with aws-lc, proxies from the
/// environment), made here because the rate limiter wraps it: the SDK only makes its default
/// when no client is given.
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Buckets are addressed by path (`endpoint/bucket`) when an endpoint is set (an emulator
/// on 127.0.0.1 has no `bucket.127.0.0.1` host names); real AWS keeps virtual hosts. Uploads
/// wait longer for their answer.
fn s3_settings(
    builder: aws_sdk_s3::config::Builder,
    base: &SdkConfig,
    persistence: &Persistence,
) -> aws_sdk_s3::config::Builder {
    let read_timeout = persistence.read_timeout * S3_READ_TIMEOUT_FACTOR;
    builder
        .force_path_style(base.endpoint_url().is_some())
        .timeout_config(persistence.timeout_config(read_timeout))
}

impl Aws {
    /// Loads the SDK's configuration chain (profiles, SSO, environment, IMDS).
    pub async fn load(options: &AwsOptions) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        let mut persistence = Persistence::default();
        if let Some(attempts) = options.max_attempts {
            persistence.max_attempts = attempts;
        }
        if let Some(read_timeout) = options.read_timeout {
            persistence.read_timeout = read_timeout;
        }
        Aws::load_from(loader, persistence).await
    }

    /// Loads `loader`'s configuration with plinth's HTTPS client (paced by the rate
    /// limiters), retries and timeouts.
    pub async fn load_from(loader: aws_config::ConfigLoader, persistence: Persistence) -> Aws {
        let loader = loader
            .http_client(https_client())
            .retry_config(persistence.retry_config())
            .timeout_config(persistence.timeout_config(persistence.read_timeout));
        let mut aws = Aws::from_config(loader.load().await);
        aws.persistence = persistence;
        aws
    }

    /// Clients that are never called (validate, schema, graph): no credential or region
    /// lookup happens.
    pub fn offline() -> Aws {
        Aws::from_config(
            SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
        )
    }

    pub fn from_config(base: SdkConfig) -> Aws {
        Aws {
            base,
            persistence: Persistence::default(),
            clients: ClientCache::default(),
            limiters: Arc::default(),
            accounts_limiters: Arc::default(),
            stats: Arc::new(CallStats::default()),
            done_once: Mutex::default(),
            account: Mutex::default(),
        }
    }

    /// Whether `check` is asked about for the first time on this connection: a check that
    /// holds for the whole run (a state bucket's versioning) is made once, not once per
    /// environment of a roster.
    pub fn first_time(&self, check: &str) -> bool {
        let mut done = self.done_once.lock().unwrap_or_else(|p| p.into_inner());
        done.insert(check.to_string())
    }

    /// The rate limiter of `service` (`dynamodb`, `ec2`, …) in `region`, shared by its client.
    pub fn limiter(&self, service: &str, region: &str) -> Arc<RateLimiter> {
        lock(&self.limiters)
            .entry((service.to_string(), region.to_string()))
            .or_insert_with(|| Arc::new(RateLimiter::new(requests_at_once(service))))
            .clone()
    }

    /// Throttled answers and the time calls waited for the rate limiters, over all of them:
    /// this account's and those of the accounts reached from it.
    pub fn throttling(&self) -> (u64, Duration) {
        let mut accounts: Vec<Arc<Limiters>> = lock(&self.accounts_limiters)
            .values()
            .filter(|l| !Arc::ptr_eq(l, &self.limiters))
            .cloned()
            .collect();
        accounts.push(self.limiters.clone());
        let mut totals = (0, Duration::ZERO);
        for limiters in accounts {
            for limiter in lock(&limiters).values() {
                let (throttled, waited) = limiter.totals();
                totals = (totals.0 + throttled, totals.1 + waited);
            }
        }
        totals
    }

    /// The same configuration working as `role` (a student's own account): every call made
    /// through the result is signed with the role's credentials, which the SDK's identity
    /// cache renews before they expire, so an apply longer than the role's session goes on.
    /// Its rate limiters are those of the role's account, shared with every other
    /// connection to it (AWS throttles each account apart, and as a whole); its calls are
    /// counted with this one's.
    pub async fn assuming(&self, role: &RoleToAssume) -> Aws {
        let provider = aws_config::sts::AssumeRoleProvider::builder(&role.role_arn)
            .session_name(&role.session_name)
            .configure(&self.base);
        let provider = match &role.external_id {
            Some(id) => provider.external_id(id),
            None => provider,
        };
        let credentials =
            aws_sdk_sts::config::SharedCredentialsProvider::new(provider.build().await);
        let base = self
            .base
            .to_builder()
            .credentials_provider(credentials)
            .build();
        let account = role.role_arn.split(':').nth(4).unwrap_or_default();
        let limiters = lock(&self.accounts_limiters)
            .entry(account.to_string())
            .or_default()
            .clone();
        Aws {
            base,
            persistence: self.persistence,
            clients: ClientCache::default(),
            limiters,
            accounts_limiters: self.accounts_limiters.clone(),
            stats: self.stats.clone(),
            done_once: Mutex::default(),
            account: Mutex::default(),
        }
    }

    /// The region the SDK chain chose, if any.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// Where calls that belong to no stack's region go (STS, a state bucket): the configured
    /// region, else us-east-1.
    pub fn home_region(&self) -> String {
        self.default_region()
            .unwrap_or_else(|| HOME_REGION_FALLBACK.to_string())
    }

    /// The account the credentials belong to (`${account_id}`, and where an environment's
    /// resources are): asked once per connection.
    pub async fn account_id(&self, region: &str) -> ResourceResult<String> {
        if let Some(known) = self
            .account
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(known);
        }
        let out = self
            .sts(region)
            .get_caller_identity()
            .send()
            .await
            .map_err(crate::errors::classify)?;
        let id = out.account.ok_or_else(|| {
            ResourceError::new(ErrorKind::Other, "GetCallerIdentity returned no account")
        })?;
        *self.account.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
        Ok(id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
