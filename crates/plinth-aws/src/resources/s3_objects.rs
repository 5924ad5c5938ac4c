//! `s3.objects`: a local folder kept in sync with a bucket prefix, like
//! `aws s3 sync --delete`, uploading only what changed.
//!
//! `normalize` reads the folder and records every file's MD5 in the computed `files` map
//! (key → MD5), and `read` lists the prefix, taking each object's ETag (the MD5 of an object
//! uploaded in one part), so the plan diffs contents file by file. The `digest` attribute
//! summarises `files` at plan time, for a CloudFront invalidation that follows the content.
//! `source` stays as written (relative to the stack file's folder, which `normalize` and
//! the operations are both given), so moving a project does not change its plan.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectIdentifier;
use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use plinth_core::resource::{
    ErrorKind, NormalizeContext, Observed, OpContext, PropIssue, ResourceError, ResourceResult,
    ResourceType,
};
use plinth_core::schema::{Attr, Prop, Shape, TypeKind, TypeSchema};
use plinth_core::value::{contains_unknown, known_str, reorder, str_of, unknown, Props, UNKNOWN};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tracing::debug;

use crate::errors::SendExt;
use crate::resources::s3_bucket::{bucket_name_problem, delete_objects, is_code, NO_SUCH_BUCKET};
use crate::Aws;

/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 8;
/// Keys a notice names before it only counts.
const NAMED_IN_NOTICE: usize = 5;
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";
/// Property order in canonical form (the schema's).
const ORDER: &[&str] = &[
    "bucket",
    "source",
    "prefix",
    "content_types",
    "cache_control",
    "files",
];

/// The `s3.objects` resource type.
pub struct Objects {
    aws: Arc<Aws>,
    schema: TypeSchema,
}

impl Objects {
    pub fn new(aws: Arc<Aws>) -> Objects {
        Objects {
            aws,
            schema: schema(),
        }
    }
}

fn schema() -> TypeSchema {
    TypeSchema {
        type_name: "s3.objects",
        description: "A local folder kept in sync with a bucket prefix (changed files uploaded, removed ones deleted)",
        kind: TypeKind::Managed,
        taggable: false,
        properties: vec![
            Prop::new("bucket", Shape::String)
                .required()
                .replaces()
                .doc("the bucket, usually ${my_bucket.name}"),
            Prop::new("source", Shape::String)
                .required()
                .doc("the folder to upload, relative to the stack file's folder"),
            Prop::new("prefix", Shape::String)
                .replaces()
                .doc("the key prefix the files go under; default \"\" (the bucket's root); a trailing / is added"),
            Prop::new("content_types", Shape::map(Shape::String))
                .doc("content types by file extension (\".webmanifest\": application/manifest+json), over the built-in guess"),
            Prop::new("cache_control", Shape::String)
                .doc("the Cache-Control header of every object; default none"),
            Prop::new("files", Shape::map(Shape::String))
                .computed()
                .doc("read-only: key → MD5 of every file, computed from `source`"),
        ],
        attributes: vec![
            Attr::new(
                "digest",
                Shape::String,
                "SHA-256 over every key and MD5: changes when any file's content or name does",
            ),
            Attr::new("count", Shape::Integer { min: Some(0), max: None }, "the number of files"),
        ],
    }
}

#[async_trait]
impl ResourceType for Objects {
    fn schema(&self) -> &TypeSchema {
        &self.schema
    }

    /// Nothing to pay for: the price table says why.
    fn cost(
        &self,
        _props: &plinth_core::value::Props,
        ctx: &plinth_core::cost::CostContext,
    ) -> Vec<plinth_core::cost::CostLine> {
        crate::cost::free(ctx, self.schema.type_name)
    }

    fn check(&self, props: &Props) -> Vec<PropIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = known_str(props, "bucket").and_then(bucket_name_problem) {
            issues.push(PropIssue::at(&["bucket"], problem));
        }
        if known_str(props, "source").is_some_and(|s| s.trim().is_empty()) {
            issues.push(PropIssue::at(&["source"], "name a folder, e.g. `site`"));
        }
        if known_str(props, "prefix").is_some_and(|p| p.starts_with('/')) {
            issues.push(PropIssue::at(
                &["prefix"],
                "S3 keys do not start with /: write `assets/`, not `/assets/`",
            ));
        }
        if let Some(Value::Object(types)) = props.get("content_types") {
            for extension in types.keys().filter(|k| !k.contains(UNKNOWN)) {
                if !extension.starts_with('.') || extension.len() < 2 {
                    issues.push(PropIssue::at(
                        &["content_types", extension],
                        format!("expected a file extension like \".html\", not {extension:?}"),
                    ));
                }
            }
        }
        issues
    }

    fn normalize(&self, props: &mut Props, ctx: &NormalizeContext) -> ResourceResult<()> {
        props.retain(|_, v| !v.is_null());
        if let Value::String(prefix) = props.entry("prefix").or_insert(json!("")) {
            if !prefix.is_empty() && !prefix.ends_with('/') && !prefix.contains(UNKNOWN) {
                prefix.push('/');
            }
        }
        props.entry("content_types").or_insert(json!({}));
        let files = match (known_str(props, "source"), known_str(props, "prefix")) {
            (Some(source), Some(prefix)) => {
                let files = local_files(&ctx.base_dir.join(source), prefix)?;
                files_value(&files)
            }
            // Not known until apply: the plan shows the files as changing.
            _ => unknown(),
        };
        props.insert("files".into(), files);
        reorder(props, ORDER);
        Ok(())
    }

    fn disk_inputs(&self, props: &Props) -> Vec<String> {
        known_str(props, "source")
            .map(str::to_string)
            .into_iter()
            .collect()
    }

    fn known_attrs(&self, props: &Props) -> Props {
        match props.get("files") {
            Some(value @ Value::Object(files)) if !contains_unknown(value) => {
                summary(&files_of(files))
            }
            _ => Props::new(),
        }
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        prior: &Props,
    ) -> ResourceResult<Option<Observed>> {
        let (bucket, prefix) = split_id(id)?;
        let client = self.aws.s3(&ctx.region);
        let Some(files) = remote_files(&client, bucket, prefix).await? else {
            return Ok(None);
        };
        let mut props = Props::new();
        props.insert("bucket".into(), json!(bucket));
        if let Some(source) = prior.get("source") {
            props.insert("source".into(), source.clone());
        }
        props.insert("prefix".into(), json!(prefix));
        props.insert(
            "content_types".into(),
            prior
                .get("content_types")
                .cloned()
                .unwrap_or_else(|| json!({})),
        );
        if let Some(cache_control) = prior.get("cache_control") {
            props.insert("cache_control".into(), cache_control.clone());
        }
        Ok(Some(observed(props, &files)))
    }

    async fn create(&self, ctx: &OpContext, props: &Props) -> ResourceResult<Observed> {
        let client = self.aws.s3(&ctx.region);
        let target = Target::of(&client, ctx, props)?;
        // A new sync still replaces whatever is under the prefix already.
        let actual = remote_files(&client, target.bucket, target.prefix)
            .await?
            .ok_or_else(|| {
                ResourceError::new(
                    ErrorKind::NotFound,
                    format!("bucket {} does not exist", target.bucket),
                )
                .with_code(NO_SUCH_BUCKET)
            })?;
        target.sync(ctx, props, &actual, |_| false).await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        _id: &str,
        before: &Props,
        after: &Props,
    ) -> ResourceResult<Observed> {
        let client = self.aws.s3(&ctx.region);
        let target = Target::of(&client, ctx, after)?;
        let actual = props_files(before);
        // Headers are set only on upload: objects whose headers change are uploaded again.
        let old_cache_control = str_of(before, "cache_control");
        let old_types = before.get("content_types").and_then(Value::as_object);
        let refresh = |key: &str| {
            old_cache_control != target.cache_control
                || content_type(key, old_types) != content_type(key, target.content_types)
        };
        target.sync(ctx, after, &actual, refresh).await
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _props: &Props) -> ResourceResult<()> {
        let (bucket, prefix) = split_id(id)?;
        let client = self.aws.s3(&ctx.region);
        let Some(files) = remote_files(&client, bucket, prefix).await? else {
            return Ok(());
        };
        let keys: Vec<String> = files.into_keys().collect();
        match delete_keys(&client, bucket, &keys).await {
            Err(err) if is_code(&err, NO_SUCH_BUCKET) => Ok(()),
            other => other,
        }
    }
}

/// Where and how files are uploaded, from desired properties.
struct Target<'a> {
    client: &'a Client,
    bucket: &'a str,
    prefix: &'a str,
    folder: PathBuf,
    content_types: Option<&'a Map<String, Value>>,
    cache_control: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn of(client: &'a Client, ctx: &OpContext, props: &'a Props) -> ResourceResult<Target<'a>> {
        let text = |key: &str| {
            str_of(props, key)
                .ok_or_else(|| ResourceError::invalid(format!("s3.objects needs `{key}`")))
        };
        Ok(Target {
            client,
            bucket: text("bucket")?,
            prefix: str_of(props, "prefix").unwrap_or(""),
            folder: ctx.base_dir.join(text("source")?),
            content_types: props.get("content_types").and_then(Value::as_object),
            cache_control: str_of(props, "cache_control"),
        })
    }

    /// Uploads what differs from `actual` (or what `refresh` names), deletes what is no
    /// longer wanted, and reports the result as the desired properties with the MD5s of
    /// what was really uploaded.
    async fn sync(
        &self,
        ctx: &OpContext,
        desired: &Props,
        actual: &BTreeMap<String, String>,
        refresh: impl Fn(&str) -> bool,
    ) -> ResourceResult<Observed> {
        let mut files = props_files(desired);
        let uploads: Vec<String> = files
            .iter()
            .filter(|(key, md5)| actual.get(*key) != Some(*md5) || refresh(key))
            .map(|(key, _)| key.clone())
            .collect();
        let deletes: Vec<String> = actual
            .keys()
            .filter(|k| !files.contains_key(*k))
            .cloned()
            .collect();
        let uploaded: Vec<(String, String)> = futures::stream::iter(uploads)
            .map(|key| async move { self.upload(&key).await })
            .buffer_unordered(PARALLEL_UPLOADS)
            .try_collect()
            .await?;
        delete_keys(self.client, self.bucket, &deletes).await?;
        let mut uploaded_keys: Vec<String> = uploaded.iter().map(|(k, _)| k.clone()).collect();
        uploaded_keys.sort();
        if !uploaded_keys.is_empty() || !deletes.is_empty() {
            ctx.notice(notice(&uploaded_keys, &deletes));
        }
        // A file edited since planning went up as it is now: record that content.
        files.extend(uploaded);
        Ok(observed(desired.clone(), &files))
    }

    /// Uploads one key from the file it came from; returns the key and the MD5 sent.
    async fn upload(&self, key: &str) -> ResourceResult<(String, String)> {
        let relative = key.strip_prefix(self.prefix).unwrap_or(key);
        let path = relative
            .split('/')
            .fold(self.folder.to_path_buf(), |path, part| path.join(part));
        let body = tokio::fs::read(&path)
            .await
            .map_err(|e| ResourceError::invalid(format!("cannot read {}: {e}", path.display())))?;
        let md5 = hex::encode(Md5::digest(&body));
        let content_type = content_type(key, self.content_types);
        debug!(
            bucket = self.bucket,
            key,
            content_type,
            bytes = body.len(),
            "PutObject"
        );
        self.client
            .put_object()
            .bucket(self.bucket)
            .key(key)
            .content_type(content_type)
            .set_cache_control(self.cache_control.map(str::to_string))
            .body(ByteStream::from(body))
            .send()
            .await
            .classified()?;
        Ok((key.to_string(), md5))
    }
}

/// "uploaded 2 file(s), deleted 1: index.html, app.js, old.css".
fn notice(uploaded: &[String], deleted: &[String]) -> String {
    let all: Vec<&str> = uploaded.iter().chain(deleted).map(String::as_str).collect();
    let mut named = all
        .iter()
        .take(NAMED_IN_NOTICE)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > NAMED_IN_NOTICE {
        named.push_str(&format!(" and {} more", all.len() - NAMED_IN_NOTICE));
    }
    format!(
        "uploaded {} file(s), deleted {}: {named}",
        uploaded.len(),
        deleted.len()
    )
}

async fn delete_keys(client: &Client, bucket: &str, keys: &[String]) -> ResourceResult<()> {
    let ids = keys
        .iter()
        .map(|key| ObjectIdentifier::builder().key(key).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ResourceError::other(format!("building the keys to delete: {e}")))?;
    delete_objects(client, bucket, ids, false).await
}

/// The content type an object gets: the stack's override for its extension (the longest
/// that matches), else a guess from the extension. Text gets its charset, so browsers do not
/// guess one.
pub fn content_type(key: &str, overrides: Option<&Map<String, Value>>) -> String {
    let lower = key.to_ascii_lowercase();
    let chosen = overrides
        .into_iter()
        .flatten()
        .filter(|(extension, _)| lower.ends_with(&extension.to_ascii_lowercase()))
        .max_by_key(|(extension, _)| extension.len())
        .and_then(|(_, value)| value.as_str());
    if let Some(chosen) = chosen {
        return chosen.to_string();
    }
    let guessed = mime_guess::from_path(key)
        .first_raw()
        .unwrap_or(FALLBACK_CONTENT_TYPE);
    let textual = guessed.starts_with("text/")
        || guessed == "application/javascript"
        || guessed == "application/json";
    if textual {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_string()
    }
}

/// Every object under the prefix, key → ETag; `None` when the bucket does not exist.
async fn remote_files(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> ResourceResult<Option<BTreeMap<String, String>>> {
    let pages = client
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(crate::errors::classify);
    let pages = match pages {
        Ok(pages) => pages,
        Err(err) if is_code(&err, NO_SUCH_BUCKET) => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(Some(
        pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|object| {
                let etag = object.e_tag()?.trim_matches('"');
                Some((object.key()?.to_string(), etag.to_string()))
            })
            .collect(),
    ))
}

/// The local files under `folder`, prefixed key → MD5, walking into folders and following
/// links to files (links to folders are left out: they could loop).
fn local_files(folder: &Path, prefix: &str) -> ResourceResult<BTreeMap<String, String>> {
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(ResourceError::invalid(format!(
                "source {} is a file, not a folder",
                folder.display()
            )))
        }
        Err(_) => {
            return Err(ResourceError::invalid(format!(
                "source folder {} does not exist",
                folder.display()
            )))
        }
    }
    let mut files = BTreeMap::new();
    walk(folder, prefix, &mut files)?;
    Ok(files)
}

fn walk(
    folder: &Path,
    key_prefix: &str,
    files: &mut BTreeMap<String, String>,
) -> ResourceResult<()> {
    let unreadable = |path: &Path, e: std::io::Error| {
        ResourceError::invalid(format!("cannot read {}: {e}", path.display()))
    };
    let mut entries = std::fs::read_dir(folder)
        .map_err(|e| unreadable(folder, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(folder, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().into_string().map_err(|name| {
            ResourceError::invalid(format!(
                "{}: S3 keys are UTF-8; rename {name:?}",
                folder.display()
            ))
        })?;
        let kind = entry.file_type().map_err(|e| unreadable(&path, e))?;
        let key = format!("{key_prefix}{name}");
        if kind.is_dir() {
            walk(&path, &format!("{key}/"), files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.insert(key, md5_of(&path).map_err(|e| unreadable(&path, e))?);
        }
    }
    Ok(())
}

fn md5_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// SHA-256 over the lines "KEY\tMD5\n" in key order: one value that follows every content.
pub fn digest(files: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, md5) in files {
        hasher.update(format!("{key}\t{md5}\n").as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn summary(files: &BTreeMap<String, String>) -> Props {
    let mut attrs = Props::new();
    attrs.insert("digest".into(), json!(digest(files)));
    attrs.insert("count".into(), json!(files.len()));
    attrs
}

fn observed(mut props: Props, files: &BTreeMap<String, String>) -> Observed {
    props.insert("files".into(), files_value(files));
    reorder(&mut props, ORDER);
    let id = format!(
        "{}/{}",
        str_of(&props, "bucket").unwrap_or_default(),
        str_of(&props, "prefix").unwrap_or_default()
    );
    Observed {
        id,
        props,
        attrs: summary(files),
    }
}

fn files_of(map: &Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

fn props_files(props: &Props) -> BTreeMap<String, String> {
    props
        .get("files")
        .and_then(Value::as_object)
        .map(files_of)
        .unwrap_or_default()
}

fn files_value(files: &BTreeMap<String, String>) -> Value {
    Value::Object(files.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// "BUCKET/PREFIX" → (bucket, prefix); bucket names never contain a slash.
fn split_id(id: &str) -> ResourceResult<(&str, &str)> {
    id.split_once('/')
        .filter(|(bucket, _)| !bucket.is_empty())
        .ok_or_else(|| {
            ResourceError::invalid(format!(
                "an s3.objects id is BUCKET/PREFIX (site-bucket/ or site-bucket/assets/), not {id:?}"
            ))
        })
}
