//! The API's Route53 alias record. Created with `CREATE` (never `UPSERT`),
//! so a record skiff does not own is never overwritten.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use skiff_plans::resource::{DnsRecordAttributes, ResourceKey};
use skiff_plans::Output;

use super::{value, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::AwsProvider;

fn change(
    key: &ResourceKey,
    action: ChangeAction,
    record: &DnsRecordAttributes,
) -> Result<ChangeBatch> {
    let build_error = |error: aws_sdk_route53::error::BuildError| {
        ProviderError::other(
            "route53:ChangeResourceRecordSets",
            key.as_str(),
            error.to_string(),
        )
    };
    let alias = AliasTarget::builder()
        .dns_name(value(key, "aliasTarget", &record.alias_target)?)
        .hosted_zone_id(value(key, "aliasZone", &record.alias_zone)?)
        .evaluate_target_health(false)
        .build()
        .map_err(build_error)?;
    let set = ResourceRecordSet::builder()
        .name(&record.name)
        .r#type(RrType::from(record.record_type.as_str()))
        .alias_target(alias)
        .build()
        .map_err(build_error)?;
    let change = Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(build_error)?;
    ChangeBatch::builder()
        .changes(change)
        .comment(format!("skiff: {}", key.as_str()))
        .build()
        .map_err(build_error)
}

async fn send(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
    action: ChangeAction,
) -> Result<()> {
    let batch = change(key, action, record)?;
    retry(&provider.retry, || async {
        provider
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&record.zone)
            .change_batch(batch.clone())
            .send()
            .await
            .map_err(|error| aws_error("route53:ChangeResourceRecordSets", &record.name, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<Applied> {
    send(provider, key, record, ChangeAction::Create).await?;
    Ok(Applied::with_id(&record.name).output(Output::Name, &record.name))
}

pub(crate) async fn upsert_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<Applied> {
    send(provider, key, record, ChangeAction::Upsert).await?;
    Ok(Applied::with_id(&record.name).output(Output::Name, &record.name))
}

pub(crate) async fn delete_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<()> {
    match send(provider, key, record, ChangeAction::Delete).await {
        // Route53 says InvalidChangeBatch when the record is already gone.
        Err(error)
            if error.code.as_deref() == Some("InvalidChangeBatch")
                && error.message.contains("not found") =>
        {
            Ok(())
        }
        other => other,
    }
}
