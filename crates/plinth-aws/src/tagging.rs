//! Finding resources by their tags with the Resource Groups Tagging API: what a destroy
//! left behind, and what `sweep` removes.
//!
//! GetResources is regional and answers for every tagged resource type at once (except IAM
//! users and roles). CloudFront's resources are global and some emulators answer for S3
//! buckets of every region in each: results are deduplicated by ARN, and each resource is
//! placed in the region its ARN names (us-east-1 for the global services), else in the
//! region that reported it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, TagFilter as SdkTagFilter};
use futures::future::join_all;
use plinth_core::resource::{OpContext, ResourceError, ResourceResult, ResourceType};
pub use plinth_core::teardown::{TagFilter, TaggedResource};
use tracing::debug;

use crate::{arn, Aws};

/// What a search found, the regions it searched, and what it could not search (a region,
/// or one type's own search in a region: no permission, no network); a caller warns about
/// those rather than failing.
#[derive(Debug, Default)]
pub struct TagSearch {
    pub found: Vec<TaggedResource>,
    pub searched: Vec<String>,
    pub failed: Vec<(String, ResourceError)>,
}

/// Every resource carrying all `filters`, in each of `regions` (all pages), once each:
/// what the Resource Groups Tagging API lists, and what each of `types` finds itself (the
/// types that API does not list, such as IAM roles).
pub async fn find_tagged(
    aws: &Aws,
    regions: &[String],
    filters: &[TagFilter],
    types: &[Arc<dyn ResourceType>],
) -> TagSearch {
    let answers = join_all(
        regions
            .iter()
            .map(|region| search_region(aws, region, filters, types)),
    )
    .await;
    let mut search = TagSearch::default();
    let mut seen = HashSet::new();
    for (region, (answer, type_failures)) in regions.iter().zip(answers) {
        match answer {
            Ok(found) => {
                search.searched.push(region.clone());
                let new = found.into_iter().filter(|r| seen.insert(r.arn.clone()));
                search.found.extend(new);
            }
            Err(err) => search.failed.push((region.clone(), err)),
        }
        search.failed.extend(type_failures);
    }
    search
}

/// A region's resources (or why the tagging API did not answer), and the types whose own
/// search failed there.
type RegionAnswer = (
    ResourceResult<Vec<TaggedResource>>,
    Vec<(String, ResourceError)>,
);

/// One region: the tagging API's answer (the region counts as searched when it answered),
/// with what each type found itself added; a type that could not search is reported on its
/// own (`us-east-1 (iam.role)`) and the rest stands.
async fn search_region(
    aws: &Aws,
    region: &str,
    filters: &[TagFilter],
    types: &[Arc<dyn ResourceType>],
) -> RegionAnswer {
    let mut found = match tagging_api(aws, region, filters).await {
        Ok(found) => found,
        Err(err) => return (Err(err), Vec::new()),
    };
    let mut failed = Vec::new();
    let ctx = OpContext::new(region, "tag search");
    for rt in types {
        match rt.find_tagged(&ctx, filters).await {
            Ok(more) => found.extend(more),
            Err(err) => failed.push((format!("{region} ({})", rt.schema().type_name), err)),
        }
    }
    (Ok(found), failed)
}

async fn tagging_api(
    aws: &Aws,
    region: &str,
    filters: &[TagFilter],
) -> ResourceResult<Vec<TaggedResource>> {
    let sdk_filters: Vec<SdkTagFilter> = filters
        .iter()
        .map(|f| {
            SdkTagFilter::builder()
                .key(&f.key)
                .set_values((!f.values.is_empty()).then(|| f.values.clone()))
                .build()
        })
        .collect();
    let pages: Vec<_> = aws
        .tagging(region)
        .get_resources()
        .set_tag_filters(Some(sdk_filters))
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut found = Vec::new();
    for page in pages {
        let page = page.map_err(crate::errors::classify)?;
        found.extend(
            page.resource_tag_mapping_list()
                .iter()
                .filter_map(|m| tagged(m, region)),
        );
    }
    debug!(region, found = found.len(), "GetResources");
    Ok(found)
}

/// How many ARNs one GetResources may name.
pub const ARNS_PER_CALL: usize = 100;

/// The tags of these resources of one region, by ARN, in one GetResources per hundred: the
/// tagging API's view, which lags behind the services' own by up to minutes, so a caller
/// trusts it only where it agrees with what it already knows. A resource it does not list
/// is absent (untagged, gone, or not indexed yet).
pub async fn tags_by_arn(
    aws: &Aws,
    region: &str,
    arns: &[String],
) -> ResourceResult<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(ARNS_PER_CALL) {
        let page = aws
            .tagging(region)
            .get_resources()
            .set_resource_arn_list(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(crate::errors::classify)?;
        for found in page
            .resource_tag_mapping_list()
            .iter()
            .filter_map(|m| tagged(m, region))
        {
            out.insert(found.arn, found.tags);
        }
    }
    debug!(
        region,
        asked = arns.len(),
        found = out.len(),
        "GetResources by ARN"
    );
    Ok(out)
}

fn tagged(mapping: &ResourceTagMapping, searched_region: &str) -> Option<TaggedResource> {
    let arn = mapping.resource_arn()?.to_string();
    let tags: BTreeMap<String, String> = mapping
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let region = arn::home_region(&arn).unwrap_or_else(|| searched_region.to_string());
    Some(TaggedResource { arn, region, tags })
}
