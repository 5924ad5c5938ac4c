//! Networks end to end: a VPC with a public and a private subnet, an internet gateway, two
//! route tables, an S3 gateway endpoint, a security group and a cache subnet group in it;
//! a NAT gateway with its own Elastic IP. It applies and is checked
//! in the emulator, re-plans clean, changes in place, and destroys to nothing. Through lost
//! answers (creates that AWS carried out, then the answer dropped) it still holds exactly one
//! of each: the VPC, subnet and gateway creates take no idempotency token.

use aws_sdk_ec2::types::{Filter, VpcAttributeName};

use crate::harness::{Env, Moto};

const STACK: &str = include_str!("../../examples/vpc-network.yaml");

fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:plinth:stack")
        .values(stack)
        .build()
}

/// How many VPCs, subnets, internet gateways and route tables carry the stack's tag.
async fn network_counts(ec2: &aws_sdk_ec2::Client, stack: &str) -> [usize; 4] {
    let vpcs = ec2
        .describe_vpcs()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("vpcs");
    let subnets = ec2
        .describe_subnets()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("subnets");
    let gateways = ec2
        .describe_internet_gateways()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("gateways");
    let tables = ec2
        .describe_route_tables()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("tables");
    [
        vpcs.vpcs().len(),
        subnets.subnets().len(),
        gateways.internet_gateways().len(),
        tables.route_tables().len(),
    ]
}

fn state_id(env: &Env, stack: &str, name: &str) -> String {
    env.state(stack)["resources"][name]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has an id in state"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_applies_as_declared_changes_in_place_and_destroys_to_nothing() {
    let env = Env::new();
    let stack = "net-e2e";
    env.write(
        "net.yaml",
        &STACK.replace("stack: example-network", &format!("stack: {stack}")),
    );
    env.plinth(&["apply", "net.yaml", "--yes"]).ok();
    let ec2 = env.ec2();
    assert_eq!(network_counts(&ec2, stack).await, [1, 2, 1, 2]);

    let vpc_id = state_id(&env, stack, "network");
    let vpc = ec2
        .describe_vpcs()
        .vpc_ids(&vpc_id)
        .send()
        .await
        .expect("vpc");
    assert_eq!(vpc.vpcs()[0].cidr_block(), Some("10.20.0.0/16"));
    let hostnames = ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc_id)
        .attribute(VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .expect("attribute");
    assert_eq!(
        hostnames.enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );

    let public = state_id(&env, stack, "public");
    let private = state_id(&env, stack, "private");
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(&public)
        .subnet_ids(&private)
        .send()
        .await
        .expect("subnets");
    let subnet = |id: &str| {
        subnets
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(id))
            .cloned()
            .expect("subnet")
    };
    assert_eq!(subnet(&public).availability_zone(), Some("us-east-1a"));
    assert_eq!(subnet(&private).availability_zone(), Some("us-east-1b"));
    assert_eq!(subnet(&public).map_public_ip_on_launch(), Some(true));
    assert_eq!(subnet(&private).map_public_ip_on_launch(), Some(false));
    assert_eq!(subnet(&public).vpc_id(), Some(vpc_id.as_str()));

    let gateway_id = state_id(&env, stack, "gateway");
    let gateways = ec2
        .describe_internet_gateways()
        .internet_gateway_ids(&gateway_id)
        .send()
        .await
        .expect("gateway");
    let attached: Vec<&str> = gateways.internet_gateways()[0]
        .attachments()
        .iter()
        .filter_map(|a| a.vpc_id())
        .collect();
    assert_eq!(attached, [vpc_id.as_str()]);

    let table_id = state_id(&env, stack, "public_routes");
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&table_id)
        .send()
        .await
        .expect("table");
    let table = &tables.route_tables()[0];
    let to_internet = table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .expect("a default route");
    assert_eq!(to_internet.gateway_id(), Some(gateway_id.as_str()));
    let associated: Vec<&str> = table
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id())
        .collect();
    assert_eq!(associated, [public.as_str()]);

    let endpoint_id = state_id(&env, stack, "s3_endpoint");
    let endpoints = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&endpoint_id)
        .send()
        .await
        .expect("endpoint");
    let endpoint = &endpoints.vpc_endpoints()[0];
    assert_eq!(endpoint.service_name(), Some("com.amazonaws.us-east-1.s3"));
    assert_eq!(
        endpoint.route_table_ids(),
        [state_id(&env, stack, "private_routes")]
    );

    let groups = env
        .elasticache()
        .describe_cache_subnet_groups()
        .cache_subnet_group_name("demo-network-cache")
        .send()
        .await
        .expect("cache subnet group");
    assert_eq!(
        groups.cache_subnet_groups()[0].vpc_id(),
        Some(vpc_id.as_str())
    );

    env.plinth(&["plan", "net.yaml", "--detailed-exitcode"])
        .ok();

    // In place: the endpoint serves the public table too, and the private subnet maps
    // public IPs.
    let changed = env
        .read("net.yaml")
        .replace(
            "route_table_ids: [\"${private_routes.id}\"]",
            "route_table_ids: [\"${private_routes.id}\", \"${public_routes.id}\"]",
        )
        .replace(
            "    az_index: 1\n",
            "    az_index: 1\n    map_public_ip_on_launch: true\n",
        );
    env.write("net.yaml", &changed);
    let plan = env
        .plinth(&["plan", "net.yaml", "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        plan.stdout.contains("2 to change") && plan.stdout.contains("0 to destroy"),
        "{}",
        plan.stdout
    );
    env.plinth(&["apply", "net.yaml", "--yes"]).ok();
    let endpoints = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&endpoint_id)
        .send()
        .await
        .expect("endpoint");
    let mut tables: Vec<String> = endpoints.vpc_endpoints()[0].route_table_ids().to_vec();
    tables.sort();
    let mut both = vec![table_id.clone(), state_id(&env, stack, "private_routes")];
    both.sort();
    assert_eq!(tables, both);
    let private_now = ec2
        .describe_subnets()
        .subnet_ids(&private)
        .send()
        .await
        .expect("subnet");
    assert_eq!(
        private_now.subnets()[0].map_public_ip_on_launch(),
        Some(true)
    );
    // The routes the endpoint added to both tables are AWS's: no change to plan.
    env.plinth(&["plan", "net.yaml", "--detailed-exitcode"])
        .ok();

    let destroy = env.plinth(&["destroy", "net.yaml", "--yes"]).ok();
    assert!(
        destroy.stdout.contains("Teardown verified"),
        "{}",
        destroy.stdout
    );
    assert_eq!(network_counts(&ec2, stack).await, [0, 0, 0, 0]);
}

/// A third of all answers lost after the work was done: creates the SDK sends again would
/// make a second VPC, subnet or gateway; plinth keeps exactly one of each.
#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_leave_exactly_one_of_each_network_resource() {
    let moto = Moto::with_faults("lost=0.3", 5);
    let mut env = Env::with_emulator(&moto);
    env.default_attempts = true;
    let stack = "net-lost";
    env.write(
        "net.yaml",
        &STACK.replace("stack: example-network", &format!("stack: {stack}")),
    );
    env.plinth(&["apply", "net.yaml", "--yes"]).ok();
    let lost = moto.fault_counts().get("lost").copied().unwrap_or(0);
    assert!(lost > 0, "no answer was lost: {:?}", moto.fault_counts());
    let ec2 = env.ec2();
    assert_eq!(network_counts(&ec2, stack).await, [1, 2, 1, 2]);
    let endpoints = ec2
        .describe_vpc_endpoints()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("endpoints");
    assert_eq!(endpoints.vpc_endpoints().len(), 1);
    env.plinth(&["plan", "net.yaml", "--detailed-exitcode"])
        .ok();
    env.plinth(&["destroy", "net.yaml", "--yes"]).ok();
    assert_eq!(network_counts(&ec2, stack).await, [0, 0, 0, 0]);
}

const NAT_STACK: &str = include_str!("../../examples/private-subnet-nat.yaml");

/// A NAT gateway: priced in the plan, given an Elastic IP of its own that is tagged with
/// it, routed to from the private subnet, and on destroy gone with its address released.
#[tokio::test(flavor = "multi_thread")]
async fn a_nat_gateway_is_priced_gets_its_own_address_and_releases_it_on_destroy() {
    let env = Env::new();
    let stack = "nat-e2e";
    env.write(
        "nat.yaml",
        &NAT_STACK.replace("stack: example-nat", &format!("stack: {stack}")),
    );
    let plan = env.plinth(&["plan", "nat.yaml"]).ok();
    let cost_line = plan
        .stdout
        .lines()
        .find(|l| l.starts_with("Estimated cost:"))
        .unwrap_or_else(|| panic!("a cost line:\n{}", plan.stdout));
    // 0.045/h + 0.005/h for 730 hours and 10 GB at 0.045: $37.  — never a free-looking plan.
    assert!(cost_line.contains("$36.95/month"), "{cost_line}");

    env.plinth(&["apply", "nat.yaml", "--yes"]).ok();
    let ec2 = env.ec2();
    let nat_id = state_id(&env, stack, "nat");
    let nat = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(&nat_id)
        .send()
        .await
        .expect("nat");
    let nat = &nat.nat_gateways()[0];
    assert_eq!(nat.state().map(|s| s.as_str()), Some("available"));
    assert_eq!(
        nat.subnet_id(),
        Some(state_id(&env, stack, "public").as_str())
    );
    let allocation = nat.nat_gateway_addresses()[0]
        .allocation_id()
        .expect("an Elastic IP")
        .to_string();
    let addresses = ec2
        .describe_addresses()
        .allocation_ids(&allocation)
        .send()
        .await
        .expect("address");
    let tags: Vec<(String, String)> = addresses.addresses()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        tags.contains(&("plinth:nat-gateway".into(), nat_id.clone())),
        "{tags:?}"
    );
    let private_table = state_id(&env, stack, "private_routes");
    let tables = ec2
        .describe_route_tables()
        .route_table_ids(&private_table)
        .send()
        .await
        .expect("table");
    let route = tables.route_tables()[0]
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .expect("a default route");
    assert_eq!(route.nat_gateway_id(), Some(nat_id.as_str()));
    env.plinth(&["plan", "nat.yaml", "--detailed-exitcode"])
        .ok();

    env.plinth(&["destroy", "nat.yaml", "--yes"]).ok();
    let after = ec2
        .describe_nat_gateways()
        .nat_gateway_ids(&nat_id)
        .send()
        .await
        .expect("nat");
    assert_eq!(
        after.nat_gateways()[0].state().map(|s| s.as_str()),
        Some("deleted")
    );
    let left = ec2
        .describe_addresses()
        .filters(stack_filter(stack))
        .send()
        .await
        .expect("addresses");
    assert!(left.addresses().is_empty(), "{:?}", left.addresses());
    assert_eq!(network_counts(&ec2, stack).await, [0, 0, 0, 0]);
}
