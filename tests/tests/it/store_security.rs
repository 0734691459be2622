//! A state store that refuses to be public (issue 21), run as the real
//! binary against the local endpoint:
//!
//! - `skiff state init` leaves a bucket whose Block Public Access,
//!   encryption, versioning, policy (the TLS-only statement merged into the
//!   existing policy) and ownership read back as specified; without `--yes`
//!   it writes nothing; a second run makes no write call; a missing bucket
//!   is created, with SSE-KMS when `--kms-key` is given;
//! - a bucket with public access not blocked, a public policy and ACL and
//!   no default encryption: `state check` names each finding (exit 2);
//!   `create cluster`, `update cluster --yes` and `--target terraform`
//!   refuse before writing anything (every object key and ETag unchanged);
//!   `--allow-insecure-store` goes on and warns;
//! - the secret objects skiff writes (`pki/`, the bootstrap token) read
//!   back with server-side encryption, with the KMS key when the store has
//!   one, and only then do the node roles get that key.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_tests::{LocalAws, SandboxHome, Skiff, SkiffOutput};

/// A gossip cluster: no hosted zone needed.
const CLUSTER: &str = "secure.k8s.local";

/// The key prefix of the stores inside their buckets.
const PREFIX: &str = "team";

/// A KMS key ARN (the local endpoint does not check that it exists).
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn skiff(aws: &LocalAws, home: &SandboxHome, bucket: &str, args: &[&str]) -> Skiff {
    Skiff::new(aws, home)
        .args(args)
        .args(["--state", &format!("s3://{bucket}/{PREFIX}")])
}

fn create_cluster(aws: &LocalAws, home: &SandboxHome, bucket: &str, extra: &[&str]) -> SkiffOutput {
    let mut args = vec!["create", "cluster", CLUSTER, "--zones", "us-east-1a"];
    args.extend_from_slice(extra);
    skiff(aws, home, bucket, &args).run()
}

/// Every object of the bucket with its ETag.
async fn etags(aws: &LocalAws, bucket: &str) -> BTreeMap<String, String> {
    let s3 = aws.s3_client().await;
    let mut objects = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.expect("list objects").contents() {
            objects.insert(
                object.key().unwrap_or_default().to_string(),
                object.e_tag().unwrap_or_default().to_string(),
            );
        }
    }
    objects
}

/// A bucket as careless hands leave it: no public access block, no default
/// encryption, a policy and an ACL that let everyone read.
fn create_public_bucket(aws: &LocalAws) -> String {
    let bucket = skiff_tests::unique_name("public");
    aws.create_insecure_bucket(&bucket);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")
        }]
    });
    let authorization = skiff_tests::fake_authorization("s3");
    let response = aws.request(
        "PUT",
        &format!("/{bucket}?policy"),
        &[
            ("User-Agent", skiff_tests::HARNESS_USER_AGENT),
            ("Authorization", &authorization),
        ],
        policy.to_string().as_bytes(),
    );
    assert!(
        (200..300).contains(&response.status),
        "put policy: {}",
        response.text()
    );
    let response = aws.request(
        "PUT",
        &format!("/{bucket}?acl"),
        &[
            ("User-Agent", skiff_tests::HARNESS_USER_AGENT),
            ("Authorization", &authorization),
            ("x-amz-acl", "public-read"),
        ],
        b"",
    );
    assert!(
        (200..300).contains(&response.status),
        "put acl: {}",
        response.text()
    );
    bucket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_init_sets_every_setting_and_a_second_run_changes_nothing() {
    // Its own endpoint: the test counts write calls.
    let aws = LocalAws::start();
    let home = SandboxHome::new();
    let s3 = aws.s3_client().await;
    let bucket = skiff_tests::unique_name("init");
    aws.create_insecure_bucket(&bucket);
    // A statement someone else owns, which init must keep.
    let logging = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::{bucket}/logs/*")
        }]
    });
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(logging.to_string())
        .send()
        .await
        .expect("put policy");
    let url = format!("s3://{bucket}/{PREFIX}");

    // The preview names every setting and writes nothing.
    aws.reset_stats();
    let preview = Skiff::new(&aws, &home).args(["state", "init", &url]).run();
    preview.assert_success();
    for setting in [
        "Block Public Access",
        "object ownership",
        "default encryption",
        "versioning",
        "TLS-only policy",
    ] {
        preview.assert_stdout_contains(setting);
    }
    preview.assert_stderr_contains("Nothing was changed");
    assert_eq!(
        aws.stats().mutating_total(),
        0,
        "the preview wrote: {:?}",
        aws.stats().mutating_calls
    );

    let applied = Skiff::new(&aws, &home)
        .args(["state", "init", &url, "--yes"])
        .run();
    applied.assert_success();
    let stats = aws.stats();
    for call in [
        "s3:PutPublicAccessBlock",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketEncryption",
        "s3:PutBucketVersioning",
        "s3:PutBucketPolicy",
    ] {
        assert_eq!(stats.count(call), 1, "{call}: {:?}", stats.mutating_calls);
    }

    // Read back, setting by setting.
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .expect("public access block");
    let block = block
        .public_access_block_configuration()
        .expect("a configuration");
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .expect("encryption");
    let rule = &encryption
        .server_side_encryption_configuration()
        .expect("a configuration")
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .expect("a default")
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .expect("versioning");
    assert_eq!(
        versioning.status().map(|status| status.as_str()),
        Some("Enabled")
    );
    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(&bucket)
        .send()
        .await
        .expect("ownership");
    assert_eq!(
        ownership.ownership_controls().expect("controls").rules()[0]
            .object_ownership()
            .as_str(),
        "BucketOwnerEnforced"
    );
    let policy = s3
        .get_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .expect("policy");
    let policy: serde_json::Value =
        serde_json::from_str(policy.policy().expect("a policy")).expect("JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 2, "{policy}");
    assert_eq!(
        statements[0], logging["Statement"][0],
        "the other statement is kept"
    );
    let deny = &statements[1];
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(
        deny["Resource"],
        serde_json::json!([
            format!("arn:aws:s3:::{bucket}"),
            format!("arn:aws:s3:::{bucket}/*")
        ])
    );

    // Twice: nothing to change, no write call.
    aws.reset_stats();
    let again = Skiff::new(&aws, &home)
        .args(["state", "init", &url, "--yes"])
        .run();
    again.assert_success();
    again.assert_stderr_contains("nothing to change");
    assert_eq!(
        aws.stats().mutating_total(),
        0,
        "the second run wrote: {:?}",
        aws.stats().mutating_calls
    );
    // And the check has nothing to say.
    let check = Skiff::new(&aws, &home)
        .args(["state", "check", "--state", &url, "-o", "json"])
        .run();
    check.assert_success();
    let report = check.stdout_json();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    assert_eq!(report["refused"], false);

    // A missing bucket is created, here with SSE-KMS and bucket keys.
    let created = skiff_tests::unique_name("kms");
    let output = Skiff::new(&aws, &home)
        .args([
            "state",
            "init",
            &format!("s3://{created}"),
            "--kms-key",
            KMS_KEY,
            "--yes",
            "-o",
            "json",
        ])
        .run();
    output.assert_success();
    assert_eq!(output.stdout_json()["applied"], true);
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&created)
        .send()
        .await
        .expect("encryption of the new bucket");
    let rule = &encryption
        .server_side_encryption_configuration()
        .expect("a configuration")
        .rules()[0];
    let default = rule
        .apply_server_side_encryption_by_default()
        .expect("a default");
    assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(default.kms_master_key_id(), Some(KMS_KEY));
    assert_eq!(rule.bucket_key_enabled(), Some(true));

    // A refused setting names the S3 operation and the IAM permission.
    let iam = aws_sdk_iam::Client::new(&aws.sdk_config().await);
    iam.create_user()
        .user_name("no-policy-writes")
        .send()
        .await
        .expect("create user");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:PutBucketPolicy", "Resource": "*"}
        ]
    });
    iam.put_user_policy()
        .user_name("no-policy-writes")
        .policy_name("no-policy-writes")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put user policy");
    let key = iam
        .create_access_key()
        .user_name("no-policy-writes")
        .send()
        .await
        .expect("create access key")
        .access_key
        .expect("an access key");
    let denied_bucket = skiff_tests::unique_name("denied");
    aws.create_insecure_bucket(&denied_bucket);
    let denied = {
        let _enforced = crate::store_safety::EnforcedAuth::on(&aws);
        Skiff::new(&aws, &home)
            .args(["state", "init", &format!("s3://{denied_bucket}"), "--yes"])
            .env("AWS_ACCESS_KEY_ID", key.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
            .run()
    };
    denied.assert_exit(1);
    denied.assert_no_panic();
    denied.assert_stderr_contains("PutBucketPolicy");
    denied.assert_stderr_contains("needs s3:PutBucketPolicy on arn:aws:s3:::");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_store_is_refused_before_anything_is_written() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let bucket = create_public_bucket(aws);

    // `state check` names each finding, and fails.
    let check = skiff(aws, &home, &bucket, &["state", "check", "-o", "json"]).run();
    check.assert_exit(2);
    let report = check.stdout_json();
    let kinds: BTreeMap<String, String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|finding| {
            (
                finding["kind"].as_str().unwrap_or_default().to_string(),
                finding["severity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("public-access-block-missing", "refusal"),
        ("public-policy", "refusal"),
        ("public-acl", "refusal"),
        ("no-default-encryption", "refusal"),
        ("no-tls-only-policy", "warning"),
        ("versioning-off", "warning"),
        ("acls-enabled", "warning"),
    ]
    .into_iter()
    .map(|(kind, severity)| (kind.to_string(), severity.to_string()))
    .collect();
    assert_eq!(kinds, expected, "{report}");
    let table = skiff(aws, &home, &bucket, &["state", "check"]).run();
    table.assert_exit(2);
    table.assert_stdout_contains("Sid \"PublicRead\" allows s3:GetObject to everyone");
    table.assert_stdout_contains("AllUsers: READ");

    // create cluster: refused, nothing written.
    let before = etags(aws, &bucket).await;
    let refused = create_cluster(aws, &home, &bucket, &[]);
    refused.assert_exit(1);
    refused.assert_no_panic();
    for text in [
        "refusing to create cluster",
        "Block Public Access is not configured",
        "the bucket policy is public",
        "the bucket ACL grants AllUsers",
        "no default encryption",
        &format!("skiff state init s3://{bucket}/{PREFIX} --yes"),
        "--allow-insecure-store",
    ] {
        refused.assert_stderr_contains(text);
    }
    assert_eq!(etags(aws, &bucket).await, before, "create cluster wrote");

    // --allow-insecure-store goes on, loudly.
    let allowed = create_cluster(aws, &home, &bucket, &["--allow-insecure-store"]);
    allowed.assert_success();
    allowed.assert_stderr_contains("INSECURE STATE STORE");
    allowed.assert_stderr_contains("no default encryption");

    // update cluster --yes and --target terraform: refused, nothing written.
    let before = etags(aws, &bucket).await;
    assert!(
        before.keys().any(|key| key.ends_with("spec.yaml")),
        "{before:?}"
    );
    let update = skiff(
        aws,
        &home,
        &bucket,
        &["update", "cluster", CLUSTER, "--yes"],
    )
    .run();
    update.assert_exit(1);
    update.assert_no_panic();
    update.assert_stderr_contains("refusing to update cluster");
    update.assert_stderr_contains("no default encryption");
    update.assert_stderr_contains(&format!("skiff state init s3://{bucket}/{PREFIX} --yes"));
    let out = home.join("terraform");
    let terraform = skiff(
        aws,
        &home,
        &bucket,
        &[
            "update",
            "cluster",
            CLUSTER,
            "--target",
            "terraform",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ],
    )
    .run();
    terraform.assert_exit(1);
    terraform.assert_stderr_contains("Block Public Access is not configured");
    assert!(!out.exists(), "terraform files were written");
    let after = etags(aws, &bucket).await;
    assert_eq!(after, before, "update cluster wrote");
    assert!(!after.keys().any(|key| key.contains("/pki/")), "{after:?}");
}

/// Writes the cluster's PKI with `update cluster --target terraform` (no
/// cloud resources needed) and returns the Terraform folder.
fn write_secrets(aws: &LocalAws, home: &SandboxHome, bucket: &str) -> std::path::PathBuf {
    create_cluster(aws, home, bucket, &[]).assert_success();
    let out = home.join(format!("terraform-{bucket}"));
    skiff(
        aws,
        home,
        bucket,
        &[
            "update",
            "cluster",
            CLUSTER,
            "--target",
            "terraform",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ],
    )
    .run()
    .assert_success();
    out
}

/// The server-side encryption of every secret object of the cluster:
/// `(key, algorithm, KMS key ID)`.
async fn secret_encryption(aws: &LocalAws, bucket: &str) -> Vec<(String, String, Option<String>)> {
    let s3 = aws.s3_client().await;
    let mut found = Vec::new();
    for key in etags(aws, bucket).await.into_keys() {
        let relative = key
            .strip_prefix(&format!("{PREFIX}/{CLUSTER}/"))
            .unwrap_or_default();
        if !(relative.starts_with("pki/") || relative.starts_with("secrets/")) {
            continue;
        }
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("head object");
        found.push((
            key,
            head.server_side_encryption()
                .map(|algorithm| algorithm.as_str().to_string())
                .unwrap_or_default(),
            head.ssekms_key_id().map(str::to_string),
        ));
    }
    found
}

/// Every file of a folder, concatenated.
fn folder_text(folder: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(folder).expect("terraform folder") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_objects_are_written_with_server_side_encryption() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();

    // SSE-S3: AES256 on every secret object, no KMS permission for nodes.
    let bucket = skiff_tests::unique_name("sse");
    Skiff::new(aws, &home)
        .args(["state", "init", &format!("s3://{bucket}"), "--yes"])
        .run()
        .assert_success();
    let terraform = write_secrets(aws, &home, &bucket);
    let objects = secret_encryption(aws, &bucket).await;
    assert!(
        objects
            .iter()
            .any(|(key, _, _)| key.ends_with("pki/ca.key")),
        "{objects:?}"
    );
    for (key, algorithm, kms_key) in &objects {
        assert_eq!(algorithm, "AES256", "{key}");
        assert_eq!(kms_key, &None, "{key}");
    }
    assert!(!folder_text(&terraform).contains("kms:Decrypt"));

    // SSE-KMS: the store's key on every secret object; the node roles may
    // decrypt with it, the control plane also generate data keys.
    let bucket = skiff_tests::unique_name("sse-kms");
    Skiff::new(aws, &home)
        .args([
            "state",
            "init",
            &format!("s3://{bucket}"),
            "--kms-key",
            KMS_KEY,
            "--yes",
        ])
        .run()
        .assert_success();
    let terraform = write_secrets(aws, &home, &bucket);
    let objects = secret_encryption(aws, &bucket).await;
    assert!(
        objects
            .iter()
            .any(|(key, _, _)| key.ends_with("pki/ca.key")),
        "{objects:?}"
    );
    for (key, algorithm, kms_key) in &objects {
        assert_eq!(algorithm, "aws:kms", "{key}");
        assert_eq!(kms_key.as_deref(), Some(KMS_KEY), "{key}");
    }
    let text = folder_text(&terraform);
    assert!(
        text.contains("kms:Decrypt"),
        "no KMS statement in the Terraform"
    );
    assert!(text.contains("kms:GenerateDataKey"));
    assert!(text.contains(KMS_KEY));
}
