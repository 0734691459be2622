//! Converting tags between skiff's sorted map and each service's types, and
//! dropping the `aws:` tags AWS adds itself (they are not ours to compare).

use skiff_plans::resource::Tags;

/// Keeps only tags skiff may manage.
pub fn ours<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    pairs
        .into_iter()
        .filter(|(key, _)| !key.starts_with("aws:"))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Tags of EC2 objects.
pub fn from_ec2(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    ours(
        tags.iter()
            .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or_default()))),
    )
}

/// EC2 tags for a request.
pub fn to_ec2(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(key, value)| {
            aws_sdk_ec2::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
        })
        .collect()
}

/// A tag specification for EC2 create calls, so resources are tagged
/// atomically with their creation (a crash can never leave one untagged).
pub fn ec2_spec(
    resource_type: aws_sdk_ec2::types::ResourceType,
    tags: &Tags,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(to_ec2(tags)))
        .build()
}

/// Tags of load balancers and target groups.
pub fn from_elb(tags: &[aws_sdk_elasticloadbalancingv2::types::Tag]) -> Tags {
    ours(
        tags.iter()
            .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or_default()))),
    )
}

/// Load balancer tags for a request.
pub fn to_elb(tags: &Tags) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(key, value)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
        })
        .collect()
}

/// IAM tags.
pub fn from_iam(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    ours(tags.iter().map(|tag| (tag.key(), tag.value())))
}

/// IAM tags for a request.
pub fn to_iam(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(key, value)| {
            aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .ok()
        })
        .collect()
}

/// What changed between two tag sets: (to set, to remove).
pub fn changes(before: &Tags, after: &Tags) -> (Tags, Vec<String>) {
    let set: Tags = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let removed: Vec<String> = before
        .keys()
        .filter(|key| !after.contains_key(*key))
        .cloned()
        .collect();
    (set, removed)
}
