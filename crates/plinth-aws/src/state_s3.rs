//! State on S3, shared by every machine that names the same `s3://BUCKET/PREFIX`: what
//! Terraform 1.10+ and OpenTofu 1.8+ do with S3's conditional writes, without a table.
//!
//! Under `PREFIX/<stack>/<workspace>/`:
//! - `state.json`: the state, written with server-side encryption and only if it is still
//!   the version this run read (`If-Match` on its ETag; `If-None-Match: *` for the first),
//!   so no update is lost even when someone breaks a lock wrongly;
//! - `lock.json`: the lock, created with `If-None-Match: *`, naming who holds it, for what,
//!   since when, and its id (`plinth state unlock ID` breaks it);
//! - `journal/<lock id>/<n>.json`: each operation of a running apply, written before the
//!   engine goes on, so a run killed on one machine is recovered exactly by the next run on
//!   any machine; folded into `state.json` by the final write (or the next lock).
//!
//! The store's calls are blocking (the engine's journal is a barrier: nothing starts before
//! its entry is durable, as with the local journal's fsync); they run on the Tokio runtime
//! the command runs on, without holding up its other tasks.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use plinth_core::resource::{ErrorKind, ResourceError};
use plinth_core::state::store::{parse_state, LockInfo, StoreError};
use plinth_core::state::{JournalEntry, State, StateLock, StateStore};

use crate::errors::SendExt;
use crate::Aws;

const PRECONDITION_FAILED: &str = "PreconditionFailed";
const NO_SUCH_KEY: &str = "NoSuchKey";
/// S3's 409 to a conditional write racing another on the same key.
const CONDITIONAL_CONFLICT: &str = "ConditionalRequestConflict";
const CONFLICT_ATTEMPTS: u64 = 5;
/// Tries at a lock that is let go of between our write and our read.
const LOCK_ATTEMPTS: usize = 3;

/// `s3://BUCKET/PREFIX` as bucket and prefix (without slashes at its ends).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// The state of every environment under one bucket and prefix.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    /// The connection's, to check the bucket's versioning once per run, not once per
    /// environment of a roster.
    aws: Arc<Aws>,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// The store at `s3://bucket/prefix`, reached through the S3 client for `region`.
    pub fn new(aws: &Arc<Aws>, region: &str, bucket: &str, prefix: &str) -> S3Store {
        S3Store {
            client: aws.s3(region),
            aws: aws.clone(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }
    }

    fn folder(&self, stack: &str, workspace: &str) -> String {
        if self.prefix.is_empty() {
            format!("{stack}/{workspace}/")
        } else {
            format!("{}/{stack}/{workspace}/", self.prefix)
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote(&self, key: &str, err: ResourceError) -> StoreError {
        StoreError::Remote {
            location: self.url(key),
            message: err.message,
        }
    }

    /// The object's text and ETag, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .classified()
        {
            Ok(out) => out,
            Err(err) if err.code.as_deref() == Some(NO_SUCH_KEY) => return Ok(None),
            Err(err) => return Err(self.remote(key, err)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out.body.collect().await.map_err(|e| StoreError::Remote {
            location: self.url(key),
            message: format!("reading it failed: {e}"),
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Remote {
            location: self.url(key),
            message: format!("it is not UTF-8 text: {e}"),
        })?;
        Ok(Some((text, etag)))
    }

    /// Puts `body` at `key` if the condition holds: `If-None-Match: *` without an ETag,
    /// `If-Match: etag` with one. `Ok(None)` when it does not (HTTP 412); the new ETag.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        if_match: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut attempt = 0;
        loop {
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .server_side_encryption(ServerSideEncryption::Aes256)
                .body(ByteStream::from(body.clone()));
            let request = match if_match {
                Some(etag) => request.if_match(etag),
                None => request.if_none_match("*"),
            };
            match request.send().await.classified() {
                Ok(out) => return Ok(Some(out.e_tag().unwrap_or_default().to_string())),
                Err(err) if err.code.as_deref() == Some(PRECONDITION_FAILED) => return Ok(None),
                // Another conditional write to the key is in flight: S3 asks to try again.
                Err(err)
                    if err.code.as_deref() == Some(CONDITIONAL_CONFLICT)
                        && attempt < CONFLICT_ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
                Err(err) => return Err(self.remote(key, err)),
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .classified()
            .map(|_| ())
            .map_err(|err| self.remote(key, err))
    }

    /// The keys under `prefix`, every page, with when each was last written.
    async fn objects(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Option<aws_smithy_types::DateTime>)>, StoreError> {
        let pages: Vec<_> = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut found = Vec::new();
        for page in pages {
            let page = page
                .map_err(crate::errors::classify)
                .map_err(|err| self.remote(prefix, err))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.push((key.to_string(), object.last_modified().copied()));
                }
            }
        }
        Ok(found)
    }

    /// Every environment with a state, a lock or a journal under the prefix, as (stack,
    /// workspace), sorted: what `sweep` finds on a shared bucket. A first apply running (or
    /// killed) has no `state.json` yet, only its lock and journal, and what it made is its
    /// own all the same.
    pub async fn environments(&self) -> Result<Vec<(String, String)>, StoreError> {
        let under = match self.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.prefix),
        };
        let mut found = Vec::new();
        for (key, _) in self.objects(&under).await? {
            let Some(key) = key.strip_prefix(under.as_str()) else {
                continue;
            };
            let parts: Vec<&str> = key.split('/').collect();
            match parts[..] {
                [stack, workspace, "state.json" | "lock.json"]
                | [stack, workspace, "journal", _, _] => {
                    found.push((stack.to_string(), workspace.to_string()))
                }
                _ => {}
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// The journal's objects under `prefix` (every run's, or one run's), oldest run first,
    /// each in order.
    async fn journal_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let found: Vec<(aws_smithy_types::DateTime, String)> = self
            .objects(prefix)
            .await?
            .into_iter()
            .filter_map(|(key, at)| Some((at?, key)))
            .collect();
        // Runs in the order they wrote; within a run, entries by number.
        let mut runs: Vec<(aws_smithy_types::DateTime, String)> = Vec::new();
        for (at, key) in &found {
            let run = run_of(key);
            match runs.iter_mut().find(|(_, r)| *r == run) {
                Some(first) if first.0.secs() > at.secs() => first.0 = *at,
                Some(_) => {}
                None => runs.push((*at, run)),
            }
        }
        runs.sort_by_key(|(at, run)| (at.secs(), run.clone()));
        let mut keys: Vec<String> = Vec::new();
        for (_, run) in runs {
            let mut of_run: Vec<String> = found
                .iter()
                .filter(|(_, k)| run_of(k) == run)
                .map(|(_, k)| k.clone())
                .collect();
            of_run.sort();
            keys.extend(of_run);
        }
        Ok(keys)
    }

    async fn journal(&self, folder: &str) -> Result<(Vec<String>, Vec<JournalEntry>), StoreError> {
        let keys = self.journal_keys(&format!("{folder}journal/")).await?;
        let mut entries = Vec::new();
        for key in &keys {
            let Some((text, _)) = self.get(key).await? else {
                continue;
            };
            match serde_json::from_str::<JournalEntry>(&text) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    return Err(StoreError::Remote {
                        location: self.url(key),
                        message: format!("not a plinth journal entry: {e}"),
                    })
                }
            }
        }
        Ok((keys, entries))
    }

    async fn read_state(
        &self,
        stack: &str,
        workspace: &str,
    ) -> Result<(State, Option<String>), StoreError> {
        let moved = format!("{}moved-to", self.folder(stack, workspace));
        if let Some((to, _)) = self.get(&moved).await? {
            return Err(StoreError::Moved {
                location: self.url(&self.folder(stack, workspace)),
                to: to.trim().to_string(),
            });
        }
        let key = format!("{}state.json", self.folder(stack, workspace));
        match self.get(&key).await? {
            None => Ok((State::new(stack, workspace), None)),
            Some((text, etag)) => {
                let state = parse_state(&text, &PathBuf::from(self.url(&key)), stack, workspace)?;
                Ok((state, Some(etag)))
            }
        }
    }

    async fn take_lock(&self, folder: &str, command: &str) -> Result<LockInfo, StoreError> {
        let key = format!("{folder}lock.json");
        let info = LockInfo::here(command, &uuid::Uuid::new_v4().to_string());
        let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
        for _ in 0..LOCK_ATTEMPTS {
            if self.put(&key, body.clone(), None).await?.is_some() {
                return Ok(info);
            }
            let Some((text, _)) = self.get(&key).await? else {
                continue; // released between our write and our read: try again
            };
            return match serde_json::from_str::<LockInfo>(&text) {
                // Our own first attempt made it, and its answer was lost.
                Ok(h) if h.id == info.id => Ok(info),
                Ok(h) => Err(StoreError::RemoteLocked {
                    location: self.url(folder),
                    holder: h.to_string(),
                    id: h.id,
                }),
                Err(_) => Err(StoreError::Remote {
                    location: self.url(&key),
                    message: "the state is locked, and the lock is unreadable: if no plinth runs there, delete lock.json by hand".into(),
                }),
            };
        }
        Err(StoreError::Remote {
            location: self.url(&key),
            message: "the lock changed hands too often to be taken; try again".into(),
        })
    }

    /// Versioning is how a bad state is rolled back: say so once per command without it.
    async fn warn_without_versioning(&self) {
        use aws_sdk_s3::types::BucketVersioningStatus;
        if !self
            .aws
            .first_time(&format!("state bucket versioning {}", self.bucket))
        {
            return;
        }
        let answer = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .classified();
        if let Ok(out) = answer {
            if out.status() != Some(&BucketVersioningStatus::Enabled) {
                tracing::warn!(
                    "versioning is off on the state bucket {}: without it a bad state cannot be rolled back (`plinth state init s3://{}` turns it on)",
                    self.bucket,
                    self.bucket
                );
            }
        }
    }

    /// Breaks the lock of one environment, only when `id` is its id.
    async fn break_lock(
        &self,
        stack: &str,
        workspace: &str,
        id: &str,
    ) -> Result<LockInfo, StoreError> {
        let key = format!("{}lock.json", self.folder(stack, workspace));
        let Some((text, _)) = self.get(&key).await? else {
            return Err(StoreError::Remote {
                location: self.url(&key),
                message: "the state is not locked".into(),
            });
        };
        let held: LockInfo = serde_json::from_str(&text).map_err(|e| StoreError::Remote {
            location: self.url(&key),
            message: format!("the lock is unreadable ({e}); delete it by hand"),
        })?;
        if held.id != id {
            return Err(StoreError::Remote {
                location: self.url(&key),
                message: format!("the lock's id is {}, not {id}: nothing was broken", held.id),
            });
        }
        self.delete(&key).await?;
        Ok(held)
    }
}

/// What `plinth state init` did to make a bucket fit for state, or found already so.
#[derive(Debug, Default)]
pub struct BucketSetup {
    pub created: bool,
    pub done: Vec<&'static str>,
}

/// Days a replaced state version is kept before S3 expires it.
const KEEP_OLD_VERSIONS_DAYS: i32 = 90;

/// Creates (or completes) a bucket for state: private with public access blocked,
/// versioned, encrypted by default, old versions expired after 90 days.
pub async fn init_bucket(
    aws: &Arc<Aws>,
    region: &str,
    bucket: &str,
) -> Result<BucketSetup, StoreError> {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
        CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
        NoncurrentVersionExpiration, PublicAccessBlockConfiguration, VersioningConfiguration,
    };
    let client = aws.s3(region);
    let location = format!("s3://{bucket}");
    let remote = |err: ResourceError| StoreError::Remote {
        location: location.clone(),
        message: err.message,
    };
    let built = |e: aws_smithy_types::error::operation::BuildError| StoreError::Remote {
        location: location.clone(),
        message: e.to_string(),
    };
    let mut setup = BucketSetup::default();
    let configuration = (region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    });
    // CreateBucket in us-east-1 answers 200 for a bucket its caller already owns, so
    // whether it is there is asked first.
    let exists = match client
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .classified()
    {
        Ok(_) => true,
        Err(err) if err.kind == ErrorKind::NotFound || err.code.as_deref() == Some("NotFound") => {
            false
        }
        Err(err) => return Err(remote(err)),
    };
    if !exists {
        match client
            .create_bucket()
            .bucket(bucket)
            .set_create_bucket_configuration(configuration)
            .send()
            .await
            .classified()
        {
            Ok(_) => setup.created = true,
            Err(err) if err.code.as_deref() == Some("BucketAlreadyOwnedByYou") => {}
            Err(err) => return Err(remote(err)),
        }
    }
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(block)
        .send()
        .await
        .classified()
        .map_err(remote)?;
    setup.done.push("public access blocked");
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .classified()
        .map_err(remote)?;
    setup.done.push("versioning on");
    // A default encryption the bucket already has (SSE-KMS, say) is kept: SSE-S3 would be
    // a downgrade. (Every bucket made since 2023 has SSE-S3 by default.)
    let encryption = client
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .classified();
    let algorithm = unless_absent(encryption, "ServerSideEncryptionConfigurationNotFoundError")
        .map_err(remote)?
        .and_then(|out| {
            let rule = out
                .server_side_encryption_configuration()?
                .rules()
                .first()?;
            Some(
                rule.apply_server_side_encryption_by_default()?
                    .sse_algorithm()
                    .clone(),
            )
        });
    match algorithm {
        Some(ServerSideEncryption::Aes256) => setup.done.push("encrypted by default (SSE-S3)"),
        Some(_) => setup
            .done
            .push("encrypted by default (its own setting, SSE-KMS, kept)"),
        None => {
            put_sse_s3(&client, bucket).await?;
            setup.done.push("encrypted by default (SSE-S3)");
        }
    }
    // Lifecycle rules are one document: the bucket's own rules are kept beside plinth's.
    let lifecycle = client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .classified();
    let (mut rules, minimum_size) = unless_absent(lifecycle, "NoSuchLifecycleConfiguration")
        .map_err(remote)?
        .map(|out| {
            let size = out.transition_default_minimum_object_size().cloned();
            (out.rules().to_vec(), size)
        })
        .unwrap_or_default();
    if rules.iter().any(|r| r.id() == Some(EXPIRE_RULE_ID)) {
        setup.done.push("old versions expire (its rule, kept)");
        return Ok(setup);
    }
    let expire = LifecycleRule::builder()
        .id(EXPIRE_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(KEEP_OLD_VERSIONS_DAYS)
                .build(),
        )
        .build()
        .map_err(built)?;
    rules.push(expire);
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .set_transition_default_minimum_object_size(minimum_size)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .classified()
        .map_err(remote)?;
    setup.done.push("old versions expire after 90 days");
    Ok(setup)
}

/// An S3 answer, or `None` where S3 says there is nothing (the error code `absent`).
fn unless_absent<T>(
    answer: Result<T, ResourceError>,
    absent: &str,
) -> Result<Option<T>, ResourceError> {
    match answer {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.code.as_deref() == Some(absent) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The lifecycle rule `state init` adds.
const EXPIRE_RULE_ID: &str = "plinth-expire-old-state-versions";

async fn put_sse_s3(client: &Client, bucket: &str) -> Result<(), StoreError> {
    let failed = |message: String| StoreError::Remote {
        location: format!("s3://{bucket}"),
        message,
    };
    let remote = |err: ResourceError| failed(err.message);
    let built = |e: aws_smithy_types::error::operation::BuildError| failed(e.to_string());
    use aws_sdk_s3::types::{
        ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .map_err(built)?,
        )
        .build();
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .classified()
        .map_err(remote)?;
    Ok(())
}

/// The run (lock id) a journal key belongs to: `…/journal/<run>/<n>.json`.
fn run_of(key: &str) -> String {
    key.rsplit('/').nth(1).unwrap_or_default().to_string()
}

/// Runs `future` to its end from blocking code on the command's runtime.
fn block<F: Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

impl StateStore for S3Store {
    fn location(&self) -> String {
        self.url(&self.prefix)
    }

    fn read(&self, stack: &str, workspace: &str) -> Result<State, StoreError> {
        block(async {
            let (mut state, _) = self.read_state(stack, workspace).await?;
            let (_, entries) = self.journal(&self.folder(stack, workspace)).await?;
            for entry in &entries {
                state.apply_entry(entry);
            }
            Ok(state)
        })
    }

    fn lock_and_read(
        &self,
        stack: &str,
        workspace: &str,
        command: &str,
    ) -> Result<(Box<dyn StateLock>, State), StoreError> {
        block(async {
            let folder = self.folder(stack, workspace);
            let info = self.take_lock(&folder, command).await?;
            let lock = S3Lock {
                store: self.clone(),
                folder: folder.clone(),
                id: info.id.clone(),
                etag: Mutex::new(None),
                next: AtomicU64::new(0),
            };
            self.warn_without_versioning().await;
            let (mut state, etag) = self.read_state(stack, workspace).await?;
            *lock.etag.lock().unwrap_or_else(|p| p.into_inner()) = etag;
            let (keys, entries) = self.journal(&folder).await?;
            if !entries.is_empty() {
                tracing::info!(
                    entries = entries.len(),
                    "recovering operations recorded by an interrupted run"
                );
                for entry in &entries {
                    state.apply_entry(entry);
                }
                lock.write_state(&mut state).await?;
                lock.drop_journal(&keys).await?;
            }
            Ok((Box::new(lock) as Box<dyn StateLock>, state))
        })
    }

    fn unlock(&self, stack: &str, workspace: &str, id: &str) -> Result<LockInfo, StoreError> {
        block(self.break_lock(stack, workspace, id))
    }

    fn mark_moved(&self, stack: &str, workspace: &str, to: &str) -> Result<(), StoreError> {
        let key = format!("{}moved-to", self.folder(stack, workspace));
        block(async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(ByteStream::from(format!("{to}\n").into_bytes()))
                .send()
                .await
                .classified()
                .map(|_| ())
                .map_err(|err| self.remote(&key, err))
        })
    }

    fn clear_moved(&self, stack: &str, workspace: &str) -> Result<(), StoreError> {
        let key = format!("{}moved-to", self.folder(stack, workspace));
        block(self.delete(&key))
    }
}

/// A lock held on one environment's state on S3.
struct S3Lock {
    store: S3Store,
    folder: String,
    id: String,
    /// The ETag of the state as this run last read or wrote it.
    etag: Mutex<Option<String>>,
    next: AtomicU64,
}

impl S3Lock {
    fn state_key(&self) -> String {
        format!("{}state.json", self.folder)
    }

    async fn write_state(&self, state: &mut State) -> Result<(), StoreError> {
        state.serial += 1;
        let key = self.state_key();
        let mut body = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Remote {
            location: self.store.url(&key),
            message: e.to_string(),
        })?;
        body.push(b'\n');
        let expected = self.etag.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let written = match self.store.put(&key, body, expected.as_deref()).await? {
            Some(etag) => etag,
            None => self.own_write(&key, state).await?,
        };
        *self.etag.lock().unwrap_or_else(|p| p.into_inner()) = Some(written);
        Ok(())
    }

    /// After a refused conditional write: the state there is ours when our first attempt
    /// made it and its answer was lost (same lineage and serial); else someone else wrote.
    async fn own_write(&self, key: &str, state: &State) -> Result<String, StoreError> {
        let conflict = || StoreError::Conflict {
            location: self.store.url(key),
        };
        let Some((text, etag)) = self.store.get(key).await? else {
            return Err(conflict());
        };
        let there: Option<State> = serde_json::from_str(&text).ok();
        match there {
            Some(s) if s.lineage == state.lineage && s.serial == state.serial && s == *state => {
                Ok(etag)
            }
            _ => Err(conflict()),
        }
    }

    /// Deletes journal objects a write folded in: one DeleteObjects per thousand.
    async fn drop_journal(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let ids: Vec<aws_sdk_s3::types::ObjectIdentifier> = keys
            .iter()
            .filter_map(|k| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(k)
                    .build()
                    .ok()
            })
            .collect();
        crate::resources::s3_bucket::delete_objects(
            &self.store.client,
            &self.store.bucket,
            ids,
            false,
        )
        .await
        .map_err(|err| self.store.remote(&format!("{}journal/", self.folder), err))
    }
}

impl StateLock for S3Lock {
    fn record(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let key = format!("{}journal/{}/{n:08}.json", self.folder, self.id);
        let body = serde_json::to_vec(entry).map_err(|e| StoreError::Remote {
            location: self.store.url(&key),
            message: e.to_string(),
        })?;
        block(async {
            // Refused: our own first attempt made it (only this run writes under its id).
            self.store.put(&key, body, None).await.map(|_| ())
        })
    }

    fn write(&self, state: &mut State) -> Result<(), StoreError> {
        block(async {
            self.write_state(state).await?;
            // Only this run's entries: the write folded them in.
            let own = format!("{}journal/{}/", self.folder, self.id);
            let keys = self.store.journal_keys(&own).await?;
            self.drop_journal(&keys).await
        })
    }
}

impl Drop for S3Lock {
    /// Lets go of the lock, if it is still ours; a process killed before this leaves it for
    /// `plinth state unlock ID`.
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let key = format!("{}lock.json", self.folder);
        let result = block(async {
            let held = self.store.get(&key).await?;
            let ours = held
                .and_then(|(text, _)| serde_json::from_str::<LockInfo>(&text).ok())
                .is_some_and(|h| h.id == self.id);
            if ours {
                self.store.delete(&key).await?;
            }
            Ok::<(), StoreError>(())
        });
        if let Err(err) = result {
            tracing::warn!(%err, "could not release the state lock");
        }
    }
}
