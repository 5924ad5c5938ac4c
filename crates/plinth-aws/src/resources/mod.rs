//! One file per resource type. Adding a type: write its file, add one line to `all`.

use std::sync::Arc;

use plinth_core::resource::ResourceType;

use crate::Aws;

pub mod acm_certificate;
pub mod cloudfront_cache_policy;
pub mod cloudfront_common;
pub mod cloudfront_distribution;
pub mod cloudfront_distribution_config;
pub mod cloudfront_function;
pub mod cloudfront_origin_access_control;
pub mod cloudfront_origin_request_policy;
pub mod cloudfront_response_headers_policy;
pub mod dynamodb_autoscaling;
pub mod dynamodb_items;
pub mod dynamodb_replicas;
pub mod dynamodb_table;
pub mod ec2_common;
pub mod ec2_default_vpc;
pub mod ec2_instance;
pub mod ec2_internet_gateway;
pub mod ec2_nat_gateway;
pub mod ec2_route_table;
pub mod ec2_security_group;
pub mod ec2_subnet;
pub mod ec2_vpc;
pub mod ec2_vpc_endpoint;
pub mod elasticache_cluster;
pub mod elasticache_common;
pub mod elasticache_logs;
pub mod elasticache_parameter_group;
pub mod elasticache_replication_group;
pub mod elasticache_serverless_cache;
pub mod elasticache_subnet_group;
pub mod elasticache_user;
pub mod elasticache_user_group;
pub mod iam_instance_profile;
pub mod iam_role;
pub mod kms_alias;
pub mod kms_key;
pub mod lambda_event_source_mapping;
pub mod lambda_function;
pub mod logs_log_group;
pub mod route53_common;
pub mod route53_record;
pub mod route53_zone;
pub mod s3_bucket;
pub mod s3_bucket_config;
pub mod s3_bucket_policy;
pub mod s3_objects;
pub mod tags;

/// Every resource type, constructed over the shared clients.
pub fn all(aws: &Arc<Aws>) -> Vec<Arc<dyn ResourceType>> {
    vec![
        Arc::new(dynamodb_table::DynamodbTable::new(aws.clone())),
        Arc::new(dynamodb_items::DynamodbItems::new(aws.clone())),
        Arc::new(ec2_default_vpc::DefaultVpc::new(aws.clone())),
        Arc::new(ec2_vpc::VpcType::new(aws.clone())),
        Arc::new(ec2_subnet::SubnetType::new(aws.clone())),
        Arc::new(ec2_internet_gateway::InternetGatewayType::new(aws.clone())),
        Arc::new(ec2_route_table::RouteTableType::new(aws.clone())),
        Arc::new(ec2_nat_gateway::NatGatewayType::new(aws.clone())),
        Arc::new(ec2_vpc_endpoint::VpcEndpointType::new(aws.clone())),
        Arc::new(ec2_security_group::SecurityGroup::new(aws.clone())),
        Arc::new(ec2_instance::InstanceResource::new(aws.clone())),
        Arc::new(elasticache_subnet_group::SubnetGroup::new(aws.clone())),
        Arc::new(elasticache_parameter_group::ParameterGroup::new(
            aws.clone(),
        )),
        Arc::new(elasticache_cluster::CacheCluster::new(aws.clone())),
        Arc::new(elasticache_replication_group::ReplicationGroup::new(
            aws.clone(),
        )),
        Arc::new(elasticache_serverless_cache::ServerlessCacheType::new(
            aws.clone(),
        )),
        Arc::new(elasticache_user::CacheUser::new(aws.clone())),
        Arc::new(elasticache_user_group::CacheUserGroup::new(aws.clone())),
        Arc::new(cloudfront_distribution::Distribution::new(aws.clone())),
        Arc::new(s3_bucket::Bucket::new(aws.clone())),
        Arc::new(s3_objects::Objects::new(aws.clone())),
        Arc::new(s3_bucket_policy::BucketPolicy::new(aws.clone())),
        Arc::new(cloudfront_origin_access_control::OriginAccessControlType::new(aws.clone())),
        Arc::new(cloudfront_cache_policy::CachePolicyType::new(aws.clone())),
        Arc::new(cloudfront_origin_request_policy::OriginRequestPolicyResource::new(aws.clone())),
        Arc::new(
            cloudfront_response_headers_policy::ResponseHeadersPolicyResource::new(aws.clone()),
        ),
        Arc::new(cloudfront_function::CloudFrontFunctionType::new(
            aws.clone(),
        )),
        Arc::new(route53_zone::ZoneType::new(aws.clone())),
        Arc::new(route53_record::RecordType::new(aws.clone())),
        Arc::new(acm_certificate::Certificate::new(aws.clone())),
        Arc::new(iam_role::IamRole::new(aws.clone())),
        Arc::new(kms_key::KmsKey::new(aws.clone())),
        Arc::new(kms_alias::KmsAlias::new(aws.clone())),
        Arc::new(logs_log_group::LogGroupType::new(aws.clone())),
        Arc::new(iam_instance_profile::InstanceProfileType::new(aws.clone())),
        Arc::new(lambda_function::LambdaFunction::new(aws.clone())),
        Arc::new(lambda_event_source_mapping::EventSourceMappingType::new(
            aws.clone(),
        )),
    ]
}
