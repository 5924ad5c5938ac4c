//! The labs issue 12 made possible, end to end against the emulator: the week-5 lab in a VPC
//! of its own with a bastion (instance, instance profile, SSM AMI, user data), a certificate
//! validated in a Route 53 zone with an alias record, and a DynamoDB stream invoking a
//! function. Each is checked in the emulator after apply, re-planned clean, and destroyed to
//! nothing.

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use base64::Engine as _;

use crate::harness::{Env, Moto};

const STUDENT: &str = "labs";

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The week-5 lab in its own VPC: two private subnets in two zones holding the Redis
/// replication group, a public subnet with an internet gateway and a route table, and the
/// bastion there with its instance profile. Applied, checked, re-planned clean, its type
/// changed in place by a stop and start, destroyed to nothing tagged.
#[tokio::test(flavor = "multi_thread")]
async fn the_week5_vpc_lab_brings_up_its_network_cache_and_bastion_and_tears_down() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_stacks(".", ".");
    let student = format!("student={STUDENT}");
    let run = |cmd: &'static str, extra: &[&'static str]| {
        let mut args = vec![cmd, "week5-vpc.yaml", "--var", student.as_str()];
        args.extend_from_slice(extra);
        env.plinth(&args)
    };

    let plan = run("plan", &[]).ok();
    assert!(
        plan.stdout.contains(
            "# ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64 is ami-"
        ),
        "the plan shows the AMI the parameter names:\n{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("user_data_file"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("user_data                   = \"sha256:"),
        "user data is shown as its hash:\n{}",
        plan.stdout
    );
    let apply = run("apply", &["--yes"]).ok();
    let state = env.state("week5-vpc");
    let id = |name: &str| {
        state["resources"][name]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has an id"))
            .to_string()
    };
    let ec2 = env.ec2();

    // The network: three subnets of the VPC, the private ones in two zones.
    let vpc = id("network");
    let subnets = ec2
        .describe_subnets()
        .filters(filter("vpc-id", &vpc))
        .send()
        .await
        .expect("subnets");
    let zone_of = |subnet: &str| {
        subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(subnet))
            .and_then(|s| s.availability_zone())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{subnet} is in the VPC"))
    };
    assert_eq!(subnets.subnets().len(), 3);
    assert_ne!(zone_of(&id("private_a")), zone_of(&id("private_b")));
    let routes = ec2
        .describe_route_tables()
        .route_table_ids(id("public_routes"))
        .send()
        .await
        .expect("route table");
    let table = &routes.route_tables()[0];
    assert!(table
        .routes()
        .iter()
        .any(|r| r.gateway_id() == Some(id("gateway").as_str())
            && r.destination_cidr_block() == Some("0.0.0.0/0")));
    assert!(table
        .associations()
        .iter()
        .any(|a| a.subnet_id() == Some(id("public").as_str())));

    // The cache in the private subnets.
    let cache_subnets = env
        .elasticache()
        .describe_cache_subnet_groups()
        .cache_subnet_group_name(format!("{STUDENT}-week5v-cache-subnets"))
        .send()
        .await
        .expect("subnet group");
    let mut in_group: Vec<String> = cache_subnets.cache_subnet_groups()[0]
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier().map(str::to_string))
        .collect();
    in_group.sort();
    let mut private = vec![id("private_a"), id("private_b")];
    private.sort();
    assert_eq!(in_group, private);

    // The bastion: in the public subnet and the app's group, with the profile, IMDSv2 only,
    // an encrypted root volume, the AMI the parameter names and the user data as written.
    let instance_id = id("bastion");
    let described = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("instance");
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(instance.subnet_id(), Some(id("public").as_str()));
    let interface = &instance.network_interfaces()[0];
    assert_eq!(
        interface
            .groups()
            .iter()
            .filter_map(|g| g.group_id())
            .collect::<Vec<_>>(),
        [id("app_sg").as_str()]
    );
    assert!(
        instance.public_ip_address().is_some(),
        "the bastion has a public address"
    );
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.micro")
    );
    assert!(instance
        .iam_instance_profile()
        .and_then(|p| p.arn())
        .is_some_and(|arn| arn.ends_with(&format!("instance-profile/{STUDENT}-week5v-bastion"))));
    assert_eq!(
        instance
            .metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    let parameter = env
        .ssm()
        .get_parameter()
        .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
        .send()
        .await
        .expect("the public parameter");
    assert_eq!(
        instance.image_id(),
        parameter.parameter().and_then(|p| p.value())
    );
    let user_data = ec2
        .describe_instance_attribute()
        .instance_id(&instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .expect("user data");
    let script = user_data
        .user_data()
        .and_then(|v| v.value())
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64")
        })
        .map(|bytes| String::from_utf8(bytes).expect("utf-8"))
        .unwrap_or_default();
    assert!(script.contains("dnf install -y redis6"), "{script}");
    let volume = instance.block_device_mappings()[0]
        .ebs()
        .and_then(|e| e.volume_id())
        .expect("a root volume");
    let volumes = ec2
        .describe_volumes()
        .volume_ids(volume)
        .send()
        .await
        .expect("volume");
    assert_eq!(volumes.volumes()[0].encrypted(), Some(true));
    // Port 22 stays closed: the app's group admits nothing.
    let groups = ec2
        .describe_security_groups()
        .group_ids(id("app_sg"))
        .send()
        .await
        .expect("group");
    assert!(groups.security_groups()[0].ip_permissions().is_empty());
    // The outputs: how to reach the bastion, and what to run there.
    assert!(
        apply.stdout.contains(&format!(
            "aws ssm start-session --target {instance_id} --region us-east-1"
        )),
        "{}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains("redis-cli -h ") && apply.stdout.contains(" -p 6379"),
        "{}",
        apply.stdout
    );

    let replan = run("plan", &["--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plans clean:\n{}", replan.stdout);

    // A bigger instance, in place: stopped, changed, started; the same instance.
    let bigger = env
        .read("week5-vpc.yaml")
        .replace("instance_type: t3.micro", "instance_type: t3.small");
    env.write("week5-vpc.yaml", &bigger);
    let plan = run("plan", &[]).ok();
    assert!(
        plan.stdout
            .contains("the instance is stopped, changed and started again"),
        "{}",
        plan.stdout
    );
    run("apply", &["--yes"]).ok();
    let described = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("instance");
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.small")
    );
    assert_eq!(
        instance.state().and_then(|s| s.name()),
        Some(&InstanceStateName::Running)
    );
    assert_eq!(
        env.state("week5-vpc")["resources"]["bastion"]["id"],
        instance_id
    );

    let destroy = run("destroy", &["--yes"]).ok();
    assert!(
        destroy
            .stdout
            .contains("Teardown verified: nothing tagged with"),
        "{}",
        destroy.stdout
    );
    let described = ec2
        .describe_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .expect("instance");
    assert_eq!(
        described.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name()),
        Some(&InstanceStateName::Terminated)
    );
    let vpcs = ec2.describe_vpcs().vpc_ids(&vpc).send().await;
    assert!(
        vpcs.map(|v| v.vpcs().is_empty()).unwrap_or(true),
        "the VPC is gone"
    );
    let profile = env
        .iam()
        .get_instance_profile()
        .instance_profile_name(format!("{STUDENT}-week5v-bastion"))
        .send()
        .await;
    assert!(profile.is_err(), "the instance profile is gone");
}

const DNS_STACK: &str = r#"
stack: dns-lab
region: us-east-1
resources:
  zone:
    type: route53.zone
    name: labs.example.net
    comment: the lab's zone
  cert:
    type: acm.certificate
    domain_name: www.labs.example.net
    validation_zone: ${zone.id}
  www:
    type: route53.record
    zone_id: ${zone.id}
    name: www.labs.example.net
    record_type: A
    alias: { name: d111111abcdef8.cloudfront.net }
  spf:
    type: route53.record
    zone_id: ${zone.id}
    name: labs.example.net
    record_type: TXT
    ttl: 600
    records: ["v=spf1 -all"]
outputs:
  name_servers: ${zone.name_servers}
"#;

/// The records of a zone, as `(name, type, values or alias target)`.
async fn records_of(env: &Env, zone: &str) -> Vec<(String, String, String)> {
    let out = env
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .expect("records");
    out.resource_record_sets()
        .iter()
        .map(|r| {
            let target = match r.alias_target() {
                Some(a) => format!("alias {} {}", a.dns_name(), a.hosted_zone_id()),
                None => r
                    .resource_records()
                    .iter()
                    .map(|v| v.value().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            (
                r.name().trim_end_matches('.').to_string(),
                r.r#type().as_str().to_string(),
                target,
            )
        })
        .collect()
}

/// A certificate with `validation_zone` gets its validation record written in the zone and
/// is issued (the emulator issues a certificate a zone covers only once the record is
/// there); the alias and TXT records are written as asked; destroy removes the records, the
/// certificate and the zone.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_is_validated_in_its_zone_and_destroy_removes_records_certificate_and_zone() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.write("dns.yaml", DNS_STACK);
    let apply = env.plinth(&["apply", "dns.yaml", "--yes"]).ok();
    assert!(
        apply
            .stdout
            .contains("wrote 1 validation record in hosted zone"),
        "{}",
        apply.stdout
    );
    let state = env.state("dns-lab");
    let zone = state["resources"]["zone"]["id"]
        .as_str()
        .expect("zone id")
        .to_string();
    let cert_arn = state["resources"]["cert"]["id"]
        .as_str()
        .expect("cert")
        .to_string();
    let cert = env
        .acm()
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await
        .expect("certificate");
    let cert = cert.certificate().expect("certificate");
    assert_eq!(cert.status().map(|s| s.as_str()), Some("ISSUED"));
    let validation = cert.domain_validation_options()[0]
        .resource_record()
        .expect("validation record");
    let records = records_of(&env, &zone).await;
    assert!(
        records.contains(&(
            validation.name().trim_end_matches('.').to_string(),
            "CNAME".to_string(),
            validation.value().to_string()
        )),
        "{records:?}"
    );
    assert!(
        records.contains(&(
            "www.labs.example.net".to_string(),
            "A".to_string(),
            "alias d111111abcdef8.cloudfront.net Z2FDTNDATAQYW2".to_string()
        )),
        "{records:?}"
    );
    assert!(
        records.contains(&(
            "labs.example.net".to_string(),
            "TXT".to_string(),
            "\"v=spf1 -all\"".to_string()
        )),
        "TXT values are quoted for Route 53: {records:?}"
    );
    let replan = env.plinth(&["plan", "dns.yaml", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "re-plans clean:\n{}", replan.stdout);

    // A change of TTL is an UPSERT in place.
    env.write("dns.yaml", &DNS_STACK.replace("ttl: 600", "ttl: 60"));
    let update = env.plinth(&["apply", "dns.yaml", "--yes"]).ok();
    assert!(update.stdout.contains("1 changed"), "{}", update.stdout);

    let destroy = env.plinth(&["destroy", "dns.yaml", "--yes"]).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    let zone_now = env.route53().get_hosted_zone().id(&zone).send().await;
    assert!(zone_now.is_err(), "the zone is gone");
    let cert_now = env
        .acm()
        .describe_certificate()
        .certificate_arn(&cert_arn)
        .send()
        .await;
    assert!(cert_now.is_err(), "the certificate is gone");
}

/// A looked-up zone that does not exist fails the plan, before anything is made.
#[test]
fn a_zone_lookup_that_finds_nothing_fails_the_plan() {
    let env = Env::new();
    env.write(
        "lookup.yaml",
        "stack: lookup-lab\nregion: us-east-1\nresources:\n  zone:\n    type: route53.zone\n    name: nowhere-to-be-found.example.org\n    lookup: true\n",
    );
    let plan = env.plinth(&["plan", "lookup.yaml"]).expect_code(1);
    assert!(
        plan.stderr
            .contains("no public hosted zone named nowhere-to-be-found.example.org"),
        "{}",
        plan.stderr
    );
}

/// The week-5 streams lab: the mapping reads the orders table's stream from the latest
/// record with the batch size and filter asked for; a filter change is made in place;
/// destroy deletes the mapping.
#[tokio::test(flavor = "multi_thread")]
async fn a_dynamodb_stream_is_wired_to_a_function_changed_in_place_and_destroyed() {
    let moto = Moto::start(0);
    let env = Env::with_emulator(&moto);
    env.copy_from_stacks(".", ".");
    let student = format!("student={STUDENT}");
    let args = |cmd: &'static str| {
        vec![
            cmd,
            "week5-streams.yaml",
            "--var",
            student.as_str(),
            "--yes",
        ]
    };
    env.plinth(&args("apply")).ok();
    let state = env.state("week5-streams");
    let uuid = state["resources"]["new_orders"]["id"]
        .as_str()
        .expect("uuid")
        .to_string();
    let stream = state["resources"]["orders"]["attrs"]["stream_arn"]
        .as_str()
        .expect("stream")
        .to_string();
    let lambda = env.lambda();
    let mapping = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("mapping");
    assert_eq!(mapping.event_source_arn(), Some(stream.as_str()));
    assert!(mapping
        .function_arn()
        .is_some_and(|f| f.ends_with(&format!(":function:{STUDENT}-w5-on-order"))));
    assert_eq!(mapping.batch_size(), Some(10));
    assert_eq!(
        mapping.starting_position().map(|p| p.as_str()),
        Some("LATEST")
    );
    let patterns: Vec<serde_json::Value> = mapping
        .filter_criteria()
        .map(|c| c.filters())
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.pattern())
        .map(|p| serde_json::from_str(p).expect("JSON pattern"))
        .collect();
    assert_eq!(patterns, [serde_json::json!({"eventName": ["INSERT"]})]);
    let mut replan = args("plan");
    replan.pop();
    replan.push("--detailed-exitcode");
    assert_eq!(env.plinth(&replan).code, 0);

    env.write(
        "week5-streams.yaml",
        &env.read("week5-streams.yaml")
            .replace("[INSERT]", "[INSERT, MODIFY]"),
    );
    env.plinth(&args("apply")).ok();
    let mapping = lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .expect("mapping");
    let pattern = mapping
        .filter_criteria()
        .map(|c| c.filters())
        .unwrap_or_default()
        .first()
        .and_then(|f| f.pattern())
        .map(|p| serde_json::from_str::<serde_json::Value>(p).expect("JSON"));
    assert_eq!(
        pattern,
        Some(serde_json::json!({"eventName": ["INSERT", "MODIFY"]}))
    );

    let destroy = env.plinth(&args("destroy")).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert!(lambda
        .get_event_source_mapping()
        .uuid(&uuid)
        .send()
        .await
        .is_err());
}

/// A prebuilt `.zip` is deployed as it is: Lambda's CodeSha256 is the file's own.
#[tokio::test(flavor = "multi_thread")]
async fn a_prebuilt_zip_is_deployed_as_it_is_and_replans_clean() {
    let env = Env::new();
    env.copy_from_examples("lambda-prebuilt-zip.yaml", "zip.yaml");
    env.copy_from_examples("functions", "functions");
    let args = |cmd: &'static str| vec![cmd, "zip.yaml", "--var", "student=labzip"];
    let mut apply = args("apply");
    apply.push("--yes");
    env.plinth(&apply).ok();
    let bytes = std::fs::read(env.path("functions/prebuilt/hello.zip")).expect("zip");
    let function = env
        .lambda()
        .get_function()
        .function_name("labzip-example-prebuilt")
        .send()
        .await
        .expect("the function");
    assert_eq!(
        function.configuration().and_then(|c| c.code_sha256()),
        Some(plinth_aws::resources::lambda_function::code_sha256(&bytes).as_str())
    );
    let mut plan = args("plan");
    plan.push("--detailed-exitcode");
    assert_eq!(env.plinth(&plan).code, 0);
    let mut destroy = args("destroy");
    destroy.push("--yes");
    env.plinth(&destroy).ok();
    assert!(env
        .lambda()
        .get_function()
        .function_name("labzip-example-prebuilt")
        .send()
        .await
        .is_err());
}

/// Code in S3: Lambda fetches the zip the function names; a new key deploys it again in
/// place; destroy removes the function before its bucket.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_from_an_s3_object_is_deployed_updated_in_place_and_destroyed() {
    let env = Env::new();
    env.copy_from_examples("lambda-from-s3.yaml", "s3code.yaml");
    env.copy_from_examples("functions", "functions");
    let args = |cmd: &'static str| vec![cmd, "s3code.yaml", "--var", "student=labs3"];
    let with = |cmd: &'static str, extra: &'static str| {
        let mut all = args(cmd);
        all.push(extra);
        all
    };
    env.plinth(&with("apply", "--yes")).ok();
    let bytes = std::fs::read(env.path("functions/prebuilt/hello.zip")).expect("zip");
    let sha = plinth_aws::resources::lambda_function::code_sha256(&bytes);
    let lambda = env.lambda();
    let reported = |out: aws_sdk_lambda::operation::get_function::GetFunctionOutput| {
        out.configuration()
            .and_then(|c| c.code_sha256())
            .map(str::to_string)
    };
    let function = lambda
        .get_function()
        .function_name("labs3-example-from-s3")
        .send()
        .await
        .expect("the function");
    assert_eq!(reported(function), Some(sha.clone()));
    assert_eq!(env.plinth(&with("plan", "--detailed-exitcode")).code, 0);

    // Another key: the artifact moves, the function's code is updated in place.
    let moved = env
        .read("s3code.yaml")
        .replace("prefix: builds/", "prefix: builds/v2/")
        .replace("key: builds/hello.zip", "key: builds/v2/hello.zip");
    env.write("s3code.yaml", &moved);
    let plan = env.plinth(&args("plan")).ok();
    assert!(
        plan.stdout.contains(
            "hello (lambda.function, us-east-1) [labs3-example-from-s3] will be updated in place"
        ),
        "{}",
        plan.stdout
    );
    env.plinth(&with("apply", "--yes")).ok();
    assert_eq!(env.plinth(&with("plan", "--detailed-exitcode")).code, 0);

    let destroy = env.plinth(&with("destroy", "--yes")).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert!(lambda
        .get_function()
        .function_name("labs3-example-from-s3")
        .send()
        .await
        .is_err());
}
