//! SDK configuration and one client per service and region, created on first use.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use plinth_core::resource::{ErrorKind, ResourceError, ResourceResult};

/// Counts every SDK call plinth makes, by `Service.Operation`, for `--stats` and benchmarks.
#[derive(Debug, Default)]
pub struct CallStats {
    total: AtomicU64,
    by_operation: Mutex<BTreeMap<String, u64>>,
}

impl CallStats {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
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
}

/// How to reach AWS: the SDK's own configuration chain, optionally pointed at an emulator.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// `--endpoint-url`; the SDK also honours `AWS_ENDPOINT_URL` by itself.
    pub endpoint_url: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// Maximum attempts per call (the SDK's retry with backoff); `None` keeps its default.
    pub max_attempts: Option<u32>,
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
                            let builder = $krate::config::Builder::from(&self.base)
                                .region(Region::new(region.to_string()))
                                .interceptor(CountCalls(self.stats.clone()));
                            $(let builder = $tweak(builder, &self.base);)?
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

/// The SDK configuration plinth runs with and the clients made from it.
pub struct Aws {
    base: SdkConfig,
    clients: ClientCache,
    pub stats: Arc<CallStats>,
}

service_clients! {
    dynamodb, insert_dynamodb: aws_sdk_dynamodb,
    ec2, insert_ec2: aws_sdk_ec2,
    elasticache, insert_elasticache: aws_sdk_elasticache,
    sts, insert_sts: aws_sdk_sts,
    s3, insert_s3: aws_sdk_s3 with s3_addressing,
    cloudfront, insert_cloudfront: aws_sdk_cloudfront,
    acm, insert_acm: aws_sdk_acm,
    iam, insert_iam: aws_sdk_iam,
    lambda, insert_lambda: aws_sdk_lambda,
    tagging, insert_tagging: aws_sdk_resourcegroupstagging,
}

/// Buckets are addressed by path (`endpoint/bucket`) when an endpoint is set (an emulator
/// on 127.0.0.1 has no `bucket.127.0.0.1` host names); real AWS keeps virtual hosts.
fn s3_addressing(
    builder: aws_sdk_s3::config::Builder,
    base: &SdkConfig,
) -> aws_sdk_s3::config::Builder {
    builder.force_path_style(base.endpoint_url().is_some())
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
        if let Some(attempts) = options.max_attempts {
            loader = loader.retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(attempts),
            );
        }
        Aws::from_config(loader.load().await)
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
            clients: ClientCache::default(),
            stats: Arc::new(CallStats::default()),
        }
    }

    /// The region the SDK chain chose, if any.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// The account the credentials belong to (`${account_id}`).
    pub async fn account_id(&self, region: &str) -> ResourceResult<String> {
        let out = self
            .sts(region)
            .get_caller_identity()
            .send()
            .await
            .map_err(crate::errors::classify)?;
        out.account.ok_or_else(|| {
            ResourceError::new(ErrorKind::Other, "GetCallerIdentity returned no account")
        })
    }
}
