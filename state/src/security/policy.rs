//! Reading a bucket policy the way the security check needs: which `Allow`
//! statements make the bucket public, and whether a statement already
//! denies plain-HTTP requests.
//!
//! Why skiff analyses the policy itself: S3's `GetBucketPolicyStatus`
//! answers "is it public" on AWS, but S3-compatible servers (and the local
//! endpoint the tests run against, moto 5) do not implement it. The rule
//! followed is AWS's "The meaning of public"
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html#access-control-block-public-access-policy-status>):
//! a policy is public when it grants access to a wildcard principal
//! without a condition that fixes who or where the caller is (an account,
//! an organisation, a VPC, a source ARN or IP range). A condition such as
//! `aws:SecureTransport` restricts *how*, not *who*: it leaves the grant
//! public.

use serde_json::{json, Value};

/// The `Sid` of the statement `skiff state init` adds.
pub const TLS_ONLY_SID: &str = "SkiffDenyInsecureTransport";

/// Condition keys that pin the caller to fixed values: an `Allow` with one
/// of them (not a wildcard) is not public, per the AWS page cited above.
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:sourceip",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

/// One statement that makes a bucket policy public, described for a
/// finding: its `Sid` (or position) and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicStatement {
    /// `Sid "X"` or `statement 2` (1-based) when it has no `Sid`.
    pub name: String,
    /// The actions it allows, as written.
    pub actions: String,
}

impl std::fmt::Display for PublicStatement {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} allows {} to everyone",
            self.name, self.actions
        )
    }
}

/// The statements of a policy document (a single object or a list).
fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        Some(Value::Bool(flag)) => vec![flag.to_string()],
        _ => Vec::new(),
    }
}

/// Whether a `Principal` names everyone: `"*"`, `{"AWS": "*"}` or a list
/// holding `"*"`.
fn is_everyone(principal: Option<&Value>) -> bool {
    match principal {
        Some(Value::String(text)) => text == "*",
        Some(Value::Object(map)) => strings(map.get("AWS")).iter().any(|text| text == "*"),
        _ => false,
    }
}

/// Whether a condition block pins the caller (a restricting key whose
/// values hold no wildcard; an IP range wider than /8 does not count).
fn restricts_caller(condition: Option<&Value>) -> bool {
    let Some(Value::Object(operators)) = condition else {
        return false;
    };
    operators.values().any(|keys| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().any(|(key, values)| {
            let key = key.to_ascii_lowercase();
            if !RESTRICTING_KEYS.contains(&key.as_str()) {
                return false;
            }
            let values = strings(Some(values));
            !values.is_empty()
                && values.iter().all(|value| {
                    if value.contains('*') || value.contains('?') {
                        return false;
                    }
                    if key == "aws:sourceip" {
                        // 0.0.0.0/0 and other huge ranges are everyone.
                        return value
                            .rsplit_once('/')
                            .and_then(|(_, bits)| bits.parse::<u8>().ok())
                            .is_none_or(|bits| bits >= 8);
                    }
                    true
                })
        })
    })
}

/// The `Allow` statements that make `policy` public (empty: not public).
/// A policy that is not JSON is reported as one public statement, since
/// nothing in it can be vouched for.
pub fn public_statements(policy: &str) -> Vec<PublicStatement> {
    let Ok(document) = serde_json::from_str::<Value>(policy) else {
        return vec![PublicStatement {
            name: "the policy (not valid JSON)".to_string(),
            actions: "an unknown set of actions".to_string(),
        }];
    };
    statements(&document)
        .into_iter()
        .enumerate()
        .filter(|(_, statement)| {
            statement.get("Effect").and_then(Value::as_str) == Some("Allow")
                && is_everyone(statement.get("Principal"))
                && !restricts_caller(statement.get("Condition"))
        })
        .map(|(index, statement)| PublicStatement {
            name: match statement.get("Sid").and_then(Value::as_str) {
                Some(sid) if !sid.is_empty() => format!("Sid {sid:?}"),
                _ => format!("statement {}", index + 1),
            },
            actions: {
                let actions = strings(statement.get("Action"));
                if actions.is_empty() {
                    "actions".to_string()
                } else {
                    actions.join(", ")
                }
            },
        })
        .collect()
}

/// The ARNs of a bucket and of its objects.
fn bucket_arns(partition: &str, bucket: &str) -> [String; 2] {
    [
        format!("arn:{partition}:s3:::{bucket}"),
        format!("arn:{partition}:s3:::{bucket}/*"),
    ]
}

/// Whether `policy` already holds a statement that denies every request
/// made without TLS, on the bucket and on its objects.
pub fn denies_insecure_transport(policy: &str, partition: &str, bucket: &str) -> bool {
    let Ok(document) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let [bucket_arn, objects_arn] = bucket_arns(partition, bucket);
    statements(&document).into_iter().any(|statement| {
        let denies = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
        let everyone = is_everyone(statement.get("Principal"));
        let actions = strings(statement.get("Action"));
        let every_action = actions
            .iter()
            .any(|action| action == "s3:*" || action == "*");
        let resources = strings(statement.get("Resource"));
        let covers = |arn: &str| {
            resources
                .iter()
                .any(|resource| resource == arn || resource == "*")
        };
        let insecure = statement
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|operators| {
                operators.iter().any(|(operator, keys)| {
                    (operator == "Bool" || operator == "BoolIfExists")
                        && keys.as_object().is_some_and(|keys| {
                            keys.iter().any(|(key, value)| {
                                key.eq_ignore_ascii_case("aws:SecureTransport")
                                    && strings(Some(value)).iter().any(|text| text == "false")
                            })
                        })
                })
            });
        denies
            && everyone
            && every_action
            && covers(&bucket_arn)
            && covers(&objects_arn)
            && insecure
    })
}

/// The statement that denies requests without TLS on the bucket and its
/// objects.
pub fn tls_only_statement(partition: &str, bucket: &str) -> Value {
    let [bucket_arn, objects_arn] = bucket_arns(partition, bucket);
    json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, objects_arn],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// `existing` (or a new policy) with the TLS-only statement added; every
/// other statement is kept as it was. A `Sid` clash (an older statement
/// of ours that no longer matches) replaces that one statement.
pub fn with_tls_only(
    existing: Option<&str>,
    partition: &str,
    bucket: &str,
) -> Result<String, String> {
    let mut document = match existing {
        None => json!({ "Version": "2012-10-17", "Statement": [] }),
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|error| format!("the bucket policy is not valid JSON ({error})"))?,
    };
    let Some(map) = document.as_object_mut() else {
        return Err("the bucket policy is not a JSON object".to_string());
    };
    let mut kept: Vec<Value> = match map.remove("Statement") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(item) => vec![item],
    };
    kept.retain(|statement| statement.get("Sid").and_then(Value::as_str) != Some(TLS_ONLY_SID));
    kept.push(tls_only_statement(partition, bucket));
    map.entry("Version")
        .or_insert_with(|| Value::String("2012-10-17".to_string()));
    map.insert("Statement".to_string(), Value::Array(kept));
    serde_json::to_string(&document).map_err(|error| error.to_string())
}

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_grant_without_a_pinning_condition_is_public() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:ListBucket"],"Resource":"arn:aws:s3:::b",
             "Condition":{"Bool":{"aws:SecureTransport":"true"}}},
            {"Sid":"Org","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*",
             "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}},
            {"Sid":"Account","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:*","Resource":"*"},
            {"Sid":"WideIp","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*",
             "Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}},
            {"Sid":"OfficeIp","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*",
             "Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}},
            {"Sid":"OrgWildcard","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*",
             "Condition":{"StringLike":{"aws:PrincipalOrgID":"o-*"}}},
            {"Sid":"DenyAll","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}
        ]}"#;
        let names: Vec<String> = public_statements(policy)
            .into_iter()
            .map(|statement| statement.to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "Sid \"PublicRead\" allows s3:GetObject to everyone",
                "statement 2 allows s3:ListBucket to everyone",
                "Sid \"WideIp\" allows s3:GetObject to everyone",
                "Sid \"OrgWildcard\" allows s3:GetObject to everyone",
            ]
        );
        assert!(public_statements(r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"*"}}"#).is_empty());
        assert_eq!(public_statements("not json").len(), 1);
    }

    #[test]
    fn the_tls_statement_is_merged_once_and_recognised() {
        let existing = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/logs/*"}]}"#;
        assert!(!denies_insecure_transport(existing, "aws", "b"));
        let merged = with_tls_only(Some(existing), "aws", "b").expect("merges");
        assert!(denies_insecure_transport(&merged, "aws", "b"));
        assert!(!denies_insecure_transport(&merged, "aws", "other"));
        let document: Value = serde_json::from_str(&merged).expect("json");
        let statements = document["Statement"].as_array().expect("list");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "Logs");
        // Merging again replaces our statement rather than adding a second.
        let again = with_tls_only(Some(&merged), "aws", "b").expect("merges");
        let document: Value = serde_json::from_str(&again).expect("json");
        assert_eq!(document["Statement"].as_array().map(Vec::len), Some(2));
        assert!(public_statements(&again).is_empty());
        // A hand-written equivalent (BoolIfExists, "*" resource) counts.
        assert!(denies_insecure_transport(
            r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"*","Resource":"*","Condition":{"BoolIfExists":{"aws:SecureTransport":false}}}]}"#,
            "aws",
            "b"
        ));
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
    }
}
