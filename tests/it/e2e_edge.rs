//! The edge end to end: the week-4 site on a custom domain (bucket + site folder + OAC +
//! bucket policy + cache policy + distribution with an HTTPS redirect, a path behavior, a
//! Lambda@Edge viewer-request function, an ACM certificate validated in a looked-up Route 53
//! zone, alias records) applies in the stack's region and in us-east-1, re-plans clean,
//! uploads just the file that changed with one invalidation, and destroys through
//! CloudFront's disable → deployed → delete sequence until nothing is left but the zone.

use crate::harness::{Env, Moto, Run, LAB_ZONE};

const STUDENT: &str = "e2e4";
const SITE_REGION: &str = "eu-west-1";
const EDGE_REGION: &str = "us-east-1";

/// The site's custom domain, in the lab zone the harness makes.
fn domain() -> String {
    format!("week4.{LAB_ZONE}")
}

fn run(env: &Env, cmd: &str, extra: &[&str]) -> Run {
    let student = format!("student={STUDENT}");
    let zone = format!("zone={LAB_ZONE}");
    let domain = format!("domain={}", domain());
    let mut args = vec![
        cmd,
        "site.yaml",
        "--var",
        &student,
        "--var",
        &zone,
        "--var",
        &domain,
    ];
    args.extend_from_slice(extra);
    env.plinth(&args)
}

/// `--stats` calls of one operation (`Service.Operation`).
fn calls(run: &Run, operation: &str) -> u64 {
    let line = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("plinth-stats: "))
        .expect("a --stats line");
    let stats: serde_json::Value = serde_json::from_str(line).expect("stats JSON");
    stats["by_operation"][operation].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_week4_site_applies_replans_clean_uploads_one_change_and_tears_down_completely() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_stacks("week4-custom-domain.yaml", "site.yaml");
    env.copy_from_stacks("site", "site");
    env.copy_from_stacks("edge", "edge");
    env.lab_vars(&env.read("site.yaml")).await;

    let plan = run(&env, "plan", &[]).ok();
    for (resource, region) in [
        ("site (s3.bucket, eu-west-1)", SITE_REGION),
        ("cert (acm.certificate, us-east-1)", EDGE_REGION),
        ("rewrite (lambda.function, us-east-1)", EDGE_REGION),
        ("cdn (cloudfront.distribution, us-east-1)", EDGE_REGION),
    ] {
        assert!(
            plan.stdout.contains(resource),
            "the plan shows {resource} in {region}:\n{}",
            plan.stdout
        );
    }

    let apply = run(&env, "apply", &["--yes"]).ok();
    assert!(
        apply
            .stdout
            .contains("wrote 1 validation record in hosted zone"),
        "apply writes the record that validates the certificate:\n{}",
        apply.stdout
    );
    // The domain's A and AAAA records are aliases of the distribution.
    let zone_id = env.state("week4-site")["resources"]["zone"]["id"]
        .as_str()
        .expect("zone id")
        .to_string();
    let cdn_domain = env.state("week4-site")["resources"]["cdn"]["attrs"]["domain_name"]
        .as_str()
        .expect("distribution domain")
        .to_string();
    let aliases = alias_records(&env, &zone_id).await;
    assert_eq!(
        aliases,
        [
            (domain(), "A".to_string(), cdn_domain.clone()),
            (domain(), "AAAA".to_string(), cdn_domain)
        ]
    );

    // The bucket: private, in the stack's region, holding the site with content types.
    let s3 = env.s3();
    let bucket = format!("{STUDENT}-week4-site-123456789012");
    let location = s3
        .get_bucket_location()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket exists");
    assert_eq!(
        location.location_constraint().map(|c| c.as_str()),
        Some(SITE_REGION)
    );
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .expect("public access block");
    let block = block
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let keys = object_etags(&s3, &bucket).await;
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "404.html",
            "about/index.html",
            "assets/style.css",
            "guide/index.html",
            "index.html"
        ]
    );
    let index = s3
        .head_object()
        .bucket(&bucket)
        .key("index.html")
        .send()
        .await
        .expect("index.html");
    assert!(
        index
            .content_type()
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        index.content_type()
    );
    let css = s3
        .head_object()
        .bucket(&bucket)
        .key("assets/style.css")
        .send()
        .await
        .expect("style.css");
    assert!(css
        .content_type()
        .unwrap_or_default()
        .starts_with("text/css"));

    // The distribution: OAC on the S3 origin, HTTPS redirect, the /assets/* behavior with
    // the custom cache policy, the edge function's version, the us-east-1 certificate.
    let cf = env.cloudfront();
    let state = env.state("week4-site");
    let dist_id = state["resources"]["cdn"]["id"]
        .as_str()
        .expect("distribution id")
        .to_string();
    let dist = cf
        .get_distribution()
        .id(&dist_id)
        .send()
        .await
        .expect("distribution exists");
    let dist = dist.distribution().expect("distribution");
    let config = dist.distribution_config().expect("config");
    assert!(config.enabled());
    assert_eq!(
        config.aliases().map(|a| a.items().to_vec()),
        Some(vec![domain()])
    );
    let origin = &config.origins().expect("origins").items()[0];
    let oac_id = state["resources"]["oac"]["id"].as_str().expect("oac id");
    assert_eq!(origin.origin_access_control_id(), Some(oac_id));
    assert_eq!(
        origin.domain_name(),
        format!("{bucket}.s3.{SITE_REGION}.amazonaws.com")
    );
    let default = config.default_cache_behavior().expect("default behavior");
    assert_eq!(
        default.viewer_protocol_policy().as_str(),
        "redirect-to-https"
    );
    assert_eq!(
        default.cache_policy_id(),
        Some("658327ea-f89d-4fab-a63d-7e88639e58f6"),
        "managed:CachingOptimized"
    );
    let function_arn = state["resources"]["rewrite"]["attrs"]["qualified_arn"]
        .as_str()
        .expect("qualified arn")
        .to_string();
    assert!(
        function_arn.starts_with(&format!("arn:aws:lambda:{EDGE_REGION}:"))
            && function_arn.ends_with(":1"),
        "{function_arn}"
    );
    let associations = default
        .lambda_function_associations()
        .map(|l| l.items().to_vec())
        .unwrap_or_default();
    assert_eq!(associations.len(), 1);
    assert_eq!(associations[0].lambda_function_arn(), function_arn);
    assert_eq!(associations[0].event_type().as_str(), "viewer-request");
    let behaviors = config
        .cache_behaviors()
        .map(|b| b.items().to_vec())
        .unwrap_or_default();
    assert_eq!(behaviors.len(), 1);
    assert_eq!(behaviors[0].path_pattern(), "/assets/*");
    let policy_id = state["resources"]["assets_cache"]["id"]
        .as_str()
        .expect("cache policy id");
    assert_eq!(behaviors[0].cache_policy_id(), Some(policy_id));
    let policy = cf
        .get_cache_policy()
        .id(policy_id)
        .send()
        .await
        .expect("cache policy exists");
    let policy_config = policy
        .cache_policy()
        .and_then(|p| p.cache_policy_config())
        .expect("cache policy config");
    assert_eq!(policy_config.default_ttl(), Some(86400));
    let cert_arn = config
        .viewer_certificate()
        .and_then(|v| v.acm_certificate_arn())
        .expect("an ACM certificate")
        .to_string();
    assert!(cert_arn.starts_with(&format!("arn:aws:acm:{EDGE_REGION}:")));
    let acm = env.acm();
    let cert = acm
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await
        .expect("certificate exists");
    assert_eq!(
        cert.certificate()
            .and_then(|c| c.status())
            .map(|s| s.as_str()),
        Some("ISSUED")
    );

    // The bucket policy grants this distribution, and only it, read access.
    let policy = s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket policy");
    let policy: serde_json::Value =
        serde_json::from_str(policy.policy().unwrap_or_default()).expect("policy JSON");
    let statement = &policy["Statement"][0];
    assert_eq!(
        statement["Principal"]["Service"],
        "cloudfront.amazonaws.com"
    );
    assert_eq!(statement["Action"], "s3:GetObject");
    assert_eq!(
        statement["Condition"]["StringEquals"]["AWS:SourceArn"],
        dist.arn()
    );

    // The role and the function live where AWS wants them.
    let role = env
        .iam()
        .list_attached_role_policies()
        .role_name(format!("{STUDENT}-week4-edge"))
        .send()
        .await
        .expect("role exists");
    assert_eq!(
        role.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect::<Vec<_>>(),
        ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    );
    let lambda = env.lambda();
    let versions = lambda
        .list_versions_by_function()
        .function_name(format!("{STUDENT}-week4-rewrite"))
        .send()
        .await
        .expect("function exists in us-east-1");
    assert!(versions.versions().iter().any(|v| v.version() == Some("1")));

    let replan = run(&env, "plan", &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plan has changes:\n{}", replan.stdout);

    // One file changes: only it is uploaded, and CloudFront's cache is invalidated once.
    let before = object_etags(&s3, &bucket).await;
    env.write(
        "site/index.html",
        "<!doctype html><html><body><h1>Week 4, edited</h1></body></html>\n",
    );
    let plan = run(&env, "plan", &[]).ok();
    assert!(
        plan.stdout.contains("~ site_files") && plan.stdout.contains("~ cdn"),
        "{}",
        plan.stdout
    );
    let apply = run(&env, "apply", &["--yes", "--stats"]).ok();
    assert_eq!(calls(&apply, "S3.PutObject"), 1, "{}", apply.all());
    assert_eq!(calls(&apply, "CloudFront.CreateInvalidation"), 1);
    assert!(
        apply.stdout.contains("invalidation"),
        "apply reports the invalidation:\n{}",
        apply.stdout
    );
    let after = object_etags(&s3, &bucket).await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(changed, ["index.html"]);
    let invalidations = cf
        .list_invalidations()
        .distribution_id(&dist_id)
        .send()
        .await
        .expect("invalidations");
    let listed = invalidations
        .invalidation_list()
        .map(|l| l.items().len())
        .unwrap_or_default();
    assert_eq!(listed, 1);
    let replan = run(&env, "plan", &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plan has changes:\n{}", replan.stdout);

    // The distribution changes in place, and a new version of the edge function is
    // published and associated in its stead.
    let stack = std::fs::read_to_string(env.path("site.yaml")).expect("read the stack");
    env.write(
        "site.yaml",
        &stack.replace("price_class: PriceClass_100", "price_class: PriceClass_200"),
    );
    let code = std::fs::read_to_string(env.path("edge/rewrite/index.js")).expect("read code");
    env.write("edge/rewrite/index.js", &format!("{code}// v2\n"));
    let apply = run(&env, "apply", &["--yes", "--stats"]).ok();
    assert_eq!(
        calls(&apply, "CloudFront.UpdateDistribution"),
        1,
        "{}",
        apply.all()
    );
    assert_eq!(calls(&apply, "Lambda.UpdateFunctionCode"), 1);
    assert_eq!(calls(&apply, "Lambda.PublishVersion"), 1);
    let config = cf
        .get_distribution_config()
        .id(&dist_id)
        .send()
        .await
        .expect("distribution config");
    let config = config.distribution_config().expect("config");
    assert_eq!(
        config.price_class().map(|p| p.as_str()),
        Some("PriceClass_200")
    );
    let association = config
        .default_cache_behavior()
        .and_then(|b| b.lambda_function_associations())
        .map(|l| l.items().to_vec())
        .unwrap_or_default();
    let version_2 = format!("{}:2", function_arn.trim_end_matches(":1"));
    assert_eq!(
        association.first().map(|a| a.lambda_function_arn()),
        Some(version_2.as_str())
    );
    let replan = run(&env, "plan", &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plan has changes:\n{}", replan.stdout);

    let tagged = tagged_arns(&env).await;
    for service in [":s3:::", ":acm:", ":lambda:", ":cloudfront:"] {
        assert!(
            tagged.iter().any(|arn| arn.contains(service)),
            "the {service} resource carries the stack's tags: {tagged:?}"
        );
    }

    // Destroy: the emulator refuses to delete an enabled distribution, as AWS does, so
    // success means plinth disabled it and waited for that to deploy first. Like AWS, it
    // then refuses to delete the edge function for a while (CloudFront still holds its
    // replicas): the function is recorded as pending deletion and everything else goes.
    let destroy = run(&env, "destroy", &["--yes", "--stats"]).ok();
    assert!(calls(&destroy, "CloudFront.UpdateDistribution") >= 1);
    assert_eq!(calls(&destroy, "CloudFront.DeleteDistribution"), 1);
    assert!(
        destroy.stdout.contains("Still being deleted (1)")
            && destroy.stdout.contains("rewrite (lambda.function")
            && destroy.stdout.contains("Lambda@Edge replicas")
            && destroy.stdout.contains("rewrite: Deletion accepted")
            && destroy
                .stdout
                .contains("11 destroyed, 1 still being deleted"),
        "destroy says what is still pending and why:\n{}",
        destroy.stdout
    );
    let state = env.state("week4-site");
    let pending: Vec<&String> = state["resources"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(pending, ["rewrite"], "{state}");
    assert!(lambda
        .get_function()
        .function_name(format!("{STUDENT}-week4-rewrite"))
        .send()
        .await
        .is_ok());

    // Later (AWS: hours; the emulator: seconds) the next destroy deletes it.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let again = run(&env, "destroy", &["--yes"]).ok();
    assert!(
        !again.stdout.contains("Still being deleted"),
        "{}",
        again.stdout
    );
    let gone = cf.get_distribution().id(&dist_id).send().await;
    assert!(gone.is_err(), "the distribution is gone");
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());
    assert!(acm
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await
        .is_err());
    assert!(cf.get_cache_policy().id(policy_id).send().await.is_err());
    assert!(cf
        .get_origin_access_control()
        .id(oac_id)
        .send()
        .await
        .is_err());
    assert!(lambda
        .get_function()
        .function_name(format!("{STUDENT}-week4-rewrite"))
        .send()
        .await
        .is_err());
    assert!(env
        .iam()
        .get_role()
        .role_name(format!("{STUDENT}-week4-edge"))
        .send()
        .await
        .is_err());
    let state = env.state("week4-site");
    assert_eq!(
        state["resources"].as_object().map(|m| m.len()),
        Some(0),
        "{state}"
    );
    assert_eq!(tagged_arns(&env).await, Vec::<String>::new());
    // The looked-up zone stays, without the records the stack wrote in it.
    assert!(env
        .route53()
        .get_hosted_zone()
        .id(&zone_id)
        .send()
        .await
        .is_ok());
    assert_eq!(own_records(&env, &zone_id).await, 0);
}

/// ARNs of everything the Resource Groups Tagging API finds tagged with the stack.
/// The zone's alias records: `(name, type, target)`.
async fn alias_records(env: &Env, zone: &str) -> Vec<(String, String, String)> {
    let out = env
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("records");
    out.resource_record_sets()
        .iter()
        .filter_map(|r| {
            let target = r
                .alias_target()?
                .dns_name()
                .trim_end_matches('.')
                .to_string();
            Some((
                r.name().trim_end_matches('.').to_string(),
                r.r#type().as_str().to_string(),
                target,
            ))
        })
        .collect()
}

/// How many records a zone holds besides its own NS and SOA.
async fn own_records(env: &Env, zone: &str) -> usize {
    let out = env
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("records");
    out.resource_record_sets()
        .iter()
        .filter(|r| !matches!(r.r#type().as_str(), "NS" | "SOA"))
        .count()
}

async fn tagged_arns(env: &Env) -> Vec<String> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key("plinth:stack")
        .values("week4-site")
        .build();
    let out = env
        .tagging()
        .get_resources()
        .tag_filters(filter)
        .send()
        .await
        .expect("tagging API");
    out.resource_tag_mapping_list()
        .iter()
        .filter_map(|m| m.resource_arn().map(str::to_string))
        .collect()
}

/// Every object in the bucket, by key, with its ETag.
async fn object_etags(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, String)> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    let mut keys: Vec<(String, String)> = out
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_string(),
                o.e_tag().unwrap_or_default().to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// A CloudFront Function (issue 13, item 1): made from its .js file, published to LIVE,
/// associated from the distribution, updated and published again when the file changes,
/// and deleted once the distribution let go of it; with it an origin request policy, the
/// distribution's standard logging and an Origin Shield.
#[tokio::test(flavor = "multi_thread")]
async fn a_cloudfront_function_is_published_associated_updated_and_deleted() {
    use aws_sdk_cloudfront::types::FunctionStage;
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("cloudfront-function.yaml", "site.yaml");
    env.copy_from_examples("site", "site");
    env.copy_from_examples("functions", "functions");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "site.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    env.plinth(&args("apply", &["--yes"])).ok();

    let cf = env.cloudfront();
    let name = "e2e-example-index-rewrite";
    let source = std::fs::read_to_string(env.path("functions/edge/index-rewrite.js"))
        .expect("the function's source");
    let live_code = || async {
        let out = cf
            .get_function()
            .name(name)
            .stage(FunctionStage::Live)
            .send()
            .await
            .expect("the LIVE stage");
        String::from_utf8(out.function_code().expect("code").as_ref().to_vec()).expect("utf-8")
    };
    assert_eq!(live_code().await, source, "published to LIVE as written");
    let live = cf
        .describe_function()
        .name(name)
        .stage(FunctionStage::Live)
        .send()
        .await
        .expect("describe");
    let summary = live.function_summary().expect("summary");
    let config = summary.function_config().expect("config");
    assert_eq!(config.runtime().as_str(), "cloudfront-js-2.0");
    assert!(
        config
            .comment()
            .starts_with("folders serve their index.html (plinth:"),
        "the comment carries the owner marker: {}",
        config.comment()
    );
    let arn = summary
        .function_metadata()
        .expect("metadata")
        .function_arn()
        .to_string();

    let state = env.state("example-function");
    let id = state["resources"]["cdn"]["id"]
        .as_str()
        .expect("distribution id");
    let dist = cf
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .expect("config");
    let behavior = dist
        .distribution_config()
        .and_then(|c| c.default_cache_behavior())
        .expect("default behavior");
    let associated: Vec<(&str, &str)> = behavior
        .function_associations()
        .map(|a| a.items())
        .unwrap_or_default()
        .iter()
        .map(|f| (f.function_arn(), f.event_type().as_str()))
        .collect();
    assert_eq!(associated, [(arn.as_str(), "viewer-request")]);
    let policy_id = state["resources"]["cors_headers"]["id"]
        .as_str()
        .expect("origin request policy id");
    assert_eq!(behavior.origin_request_policy_id(), Some(policy_id));
    let policy = cf
        .get_origin_request_policy()
        .id(policy_id)
        .send()
        .await
        .expect("the origin request policy");
    let headers = policy
        .origin_request_policy()
        .and_then(|p| p.origin_request_policy_config())
        .and_then(|c| c.headers_config())
        .expect("headers");
    assert_eq!(headers.header_behavior().as_str(), "whitelist");
    let mut names = headers
        .headers()
        .map(|h| h.items().to_vec())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        [
            "Access-Control-Request-Headers",
            "Access-Control-Request-Method",
            "Origin"
        ]
    );
    let headers_id = state["resources"]["security_headers"]["id"]
        .as_str()
        .expect("response headers policy id");
    assert_eq!(behavior.response_headers_policy_id(), Some(headers_id));
    let sent = cf
        .get_response_headers_policy()
        .id(headers_id)
        .send()
        .await
        .expect("the response headers policy");
    let config = sent
        .response_headers_policy()
        .and_then(|p| p.response_headers_policy_config())
        .expect("config");
    let security = config.security_headers_config().expect("security headers");
    let hsts = security.strict_transport_security().expect("hsts");
    assert_eq!(hsts.access_control_max_age_sec(), 31_536_000);
    assert_eq!(hsts.include_subdomains(), Some(true));
    assert!(hsts.r#override(), "what the stack says is what viewers get");
    assert_eq!(
        security.frame_options().map(|f| f.frame_option().as_str()),
        Some("DENY")
    );
    assert!(security.content_type_options().is_some());
    let removed: Vec<&str> = config
        .remove_headers_config()
        .map(|r| r.items())
        .unwrap_or_default()
        .iter()
        .map(|h| h.header())
        .collect();
    assert_eq!(removed, ["Server"]);
    let timing = config
        .server_timing_headers_config()
        .expect("server timing");
    assert!(timing.enabled());
    assert_eq!(timing.sampling_rate(), Some(5.0));
    let logging = dist
        .distribution_config()
        .and_then(|c| c.logging())
        .expect("logging");
    assert!(logging.enabled());
    assert_eq!(
        logging.bucket(),
        "e2e-example-cdn-logs-123456789012.s3.amazonaws.com"
    );
    assert_eq!(logging.prefix(), "cdn/");
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    // Origin Shield in front of the bucket: in place, read back as written.
    let stack = std::fs::read_to_string(env.path("site.yaml")).expect("stack");
    env.write(
        "site.yaml",
        &stack.replace(
            "        origin_access_control: ${oac.id}\n",
            "        origin_access_control: ${oac.id}\n        origin_shield: us-east-1\n",
        ),
    );
    env.plinth(&args("apply", &["--yes"])).ok();
    let dist = cf
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .expect("config");
    let shield = dist
        .distribution_config()
        .and_then(|c| c.origins())
        .map(|o| o.items()[0].clone())
        .and_then(|o| o.origin_shield().cloned())
        .expect("origin shield");
    assert!(shield.enabled());
    assert_eq!(shield.origin_shield_region(), Some("us-east-1"));
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    // The file changes: the plan shows the code's hash change, apply publishes it.
    let changed = source.replace("index.html", "main.html");
    env.write("functions/edge/index-rewrite.js", &changed);
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ code = \"sha256:"),
        "{}",
        plan.stdout
    );
    env.plinth(&args("apply", &["--yes"])).ok();
    assert_eq!(live_code().await, changed);
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    let gone = cf
        .describe_function()
        .name(name)
        .stage(FunctionStage::Development)
        .send()
        .await;
    let code = gone.err().and_then(|e| {
        aws_sdk_cloudfront::error::ProvideErrorMetadata::code(&e).map(str::to_string)
    });
    assert_eq!(code.as_deref(), Some("NoSuchFunctionExists"));
    let policy = cf.get_origin_request_policy().id(policy_id).send().await;
    assert!(policy.is_err(), "the origin request policy is deleted");
    let headers = cf.get_response_headers_policy().id(headers_id).send().await;
    assert!(headers.is_err(), "the response headers policy is deleted");
}

/// The origin group read back from the distribution's configuration: its id, members in
/// order and failover status codes.
async fn origin_groups_of(
    cf: &aws_sdk_cloudfront::Client,
    id: &str,
) -> (String, Vec<(String, Vec<String>, Vec<i32>)>) {
    let out = cf
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .expect("config");
    let config = out.distribution_config().expect("config");
    let target = config
        .default_cache_behavior()
        .map(|b| b.target_origin_id().to_string())
        .unwrap_or_default();
    let groups = config
        .origin_groups()
        .map(|g| g.items().to_vec())
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let members = g
                .members()
                .map(|m| m.items())
                .unwrap_or_default()
                .iter()
                .map(|m| m.origin_id().to_string())
                .collect();
            let codes = g
                .failover_criteria()
                .and_then(|c| c.status_codes())
                .map(|c| c.items().to_vec())
                .unwrap_or_default();
            (g.id().to_string(), members, codes)
        })
        .collect();
    (target, groups)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_origin_group_is_targeted_changed_in_place_and_destroyed() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_examples("cloudfront-failover.yaml", "site.yaml");
    env.copy_from_examples("site", "site");
    let args = |cmd: &'static str, extra: &[&'static str]| {
        let mut all = vec![cmd, "site.yaml", "--var", "student=e2e"];
        all.extend(extra);
        all
    };
    env.plinth(&args("apply", &["--yes"])).ok();
    let cf = env.cloudfront();
    let state = env.state("example-failover");
    let id = state["resources"]["cdn"]["id"]
        .as_str()
        .expect("distribution id")
        .to_string();
    let (target, groups) = origin_groups_of(&cf, &id).await;
    assert_eq!(target, "site", "the default behavior targets the group");
    assert_eq!(
        groups,
        [(
            "site".to_string(),
            vec!["primary".to_string(), "replica".to_string()],
            vec![403, 404, 500, 502, 503, 504]
        )]
    );
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    // Failing over on server errors only, and with the members swapped: in place.
    let stack = env.read("site.yaml");
    env.write(
        "site.yaml",
        &stack
            .replace("[403, 404, 500, 502, 503, 504]", "[502, 500]")
            .replace(
                "primary: primary\n        secondary: replica",
                "primary: replica\n        secondary: primary",
            ),
    );
    let plan = env.plinth(&args("plan", &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("updated in place"), "{}", plan.stdout);
    env.plinth(&args("apply", &["--yes"])).ok();
    let (_, groups) = origin_groups_of(&cf, &id).await;
    assert_eq!(
        groups,
        [(
            "site".to_string(),
            vec!["replica".to_string(), "primary".to_string()],
            vec![500, 502]
        )]
    );
    assert_eq!(env.plinth(&args("plan", &["--detailed-exitcode"])).code, 0);

    let destroy = env.plinth(&args("destroy", &["--yes"])).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert!(
        cf.get_distribution().id(&id).send().await.is_err(),
        "the distribution is deleted"
    );
    for region in ["us-east-1", "us-west-2"] {
        let left = env.tagged(region, Some("example-failover")).await;
        assert!(left.is_empty(), "{region}: {left:?}");
    }
}
