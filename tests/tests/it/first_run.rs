//! First-run errors: what a new user meets before anything works. Each is
//! one clear error naming what to set or run, with none of the credential
//! chain's account of every provider it tried, and exit 1:
//! - no credentials (and no region), as outside AWS;
//! - an expired IAM Identity Center (SSO) session;
//! - an `AWS_PROFILE` that gives no credentials;
//! - credentials for another AWS account than the cluster's resources.
//!
//! The runner ([`skiff_tests::Skiff`]) clears the environment and gives
//! every run an empty sandbox HOME (no `~/.aws`); these tests also remove
//! the keys and the region it sets. Instance metadata stays disabled
//! (`AWS_EC2_METADATA_DISABLED=true`, which the runner sets): that is how a
//! test stands in for "outside AWS", where the chain's last provider, the
//! instance metadata service, is not reachable (on a laptop it times out
//! after about a second per attempt instead of being skipped).

use std::time::Duration;

use skiff_tests::{
    fake_authorization, LocalAws, SandboxHome, Skiff, SkiffOutput, HARNESS_USER_AGENT,
};

/// `skiff ARGS` with no credentials and no region at all.
fn without_credentials(aws: &LocalAws, home: &SandboxHome, args: &[&str]) -> Skiff {
    Skiff::new(aws, home)
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
}

/// What every first-run error shares: exit 1, at most three lines on
/// stderr, none of them a log line or the chain's list of providers.
#[track_caller]
fn assert_one_clear_error(output: &SkiffOutput) {
    output.assert_exit(1).assert_no_panic();
    let lines: Vec<&str> = output.stderr.lines().collect();
    assert!(
        lines.len() <= 3,
        "{} lines on stderr, at most 3 wanted\n{output}",
        lines.len()
    );
    for noise in [
        "WARN",
        "Attempted",
        "Ec2InstanceMetadata",
        "credential provider was not enabled",
        "dispatch failure",
        "caused by",
    ] {
        assert!(
            !output.stderr.contains(noise),
            "stderr shows the credential chain ({noise:?})\n{output}"
        );
    }
}

#[test]
fn no_credentials_and_no_region_is_one_error_naming_what_to_set() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let bucket = aws.create_unique_bucket("first-run");
    let store = format!("s3://{bucket}");

    // A team store in S3: the first thing a new user lists.
    let listed = without_credentials(aws, &home, &["get", "clusters", "--state", &store])
        .timeout(Duration::from_secs(60))
        .run();
    assert_one_clear_error(&listed);
    listed
        .assert_stderr_contains("no AWS credentials found")
        .assert_stderr_contains("AWS_PROFILE")
        .assert_stderr_contains("AWS_ACCESS_KEY_ID")
        .assert_stderr_contains("AWS_REGION");

    // A local store needs no AWS to create a spec; the preview then does.
    let created = without_credentials(
        aws,
        &home,
        &[
            "create",
            "cluster",
            "first.k8s.local",
            "--zones",
            "us-east-1a",
        ],
    )
    .run();
    created.assert_success();
    let preview = without_credentials(aws, &home, &["update", "cluster", "first.k8s.local"])
        .timeout(Duration::from_secs(60))
        .run();
    assert_one_clear_error(&preview);
    preview
        .assert_stderr_contains("no AWS credentials found")
        .assert_stderr_contains("AWS_PROFILE");
    assert!(
        !preview.stderr.contains("DescribeImages"),
        "the error comes before the first call\n{preview}"
    );
}

/// An IAM Identity Center profile whose cached token expired (and cannot
/// be refreshed): the error names `aws sso login --profile PROFILE`.
#[test]
fn an_expired_sso_session_names_aws_sso_login() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    home.write(
        ".aws/config",
        "[profile dev]\n\
         sso_session = corp\n\
         sso_account_id = 111111111111\n\
         sso_role_name = Admin\n\
         region = us-east-1\n\
         \n\
         [sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\n\
         sso_region = us-east-1\n",
    );
    // The token cache is named by the SHA-1 of the session name
    // (`echo -n corp | sha1sum`), as `aws sso login` writes it.
    home.write(
        ".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json",
        r#"{"accessToken":"expired","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://corp.awsapps.com/start"}"#,
    );
    let bucket = aws.create_unique_bucket("first-run-sso");
    let output = without_credentials(
        aws,
        &home,
        &["get", "clusters", "--state", &format!("s3://{bucket}")],
    )
    .env("AWS_PROFILE", "dev")
    .timeout(Duration::from_secs(60))
    .run();
    assert_one_clear_error(&output);
    output
        .assert_stderr_contains("SSO session of profile dev has expired")
        .assert_stderr_contains("aws sso login --profile dev");
}

/// `AWS_PROFILE` names a profile that does not exist.
#[test]
fn a_profile_without_credentials_is_named() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let bucket = aws.create_unique_bucket("first-run-profile");
    let output = without_credentials(
        aws,
        &home,
        &["get", "clusters", "--state", &format!("s3://{bucket}")],
    )
    .env("AWS_PROFILE", "prod-admin")
    .timeout(Duration::from_secs(60))
    .run();
    assert_one_clear_error(&output);
    output
        .assert_stderr_contains("profile prod-admin")
        .assert_stderr_contains("~/.aws/config");
}

/// A cluster built in the endpoint's default account (123456789012); then
/// credentials of a role in account 111111111111 (moto ties the keys
/// `AssumeRole` returns to the role's account). The preview and the delete
/// refuse, naming both accounts and what to set, instead of planning to
/// build everything again in the wrong account.
#[test]
fn credentials_for_another_account_are_refused() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let bucket = aws.create_unique_bucket("first-run-account");
    let store = format!("s3://{bucket}");
    let cluster = "account.k8s.local";
    let skiff = |args: &[&str]| {
        Skiff::new(aws, &home)
            .args(args)
            .args(["--state", &store])
            .timeout(Duration::from_secs(300))
    };
    skiff(&["create", "cluster", cluster, "--zones", "us-east-1a"])
        .run()
        .assert_success();
    skiff(&["update", "cluster", cluster, "--yes"])
        .run()
        .assert_success();

    let (key, secret, token) = assume_role(aws, "arn:aws:iam::111111111111:role/other-team");
    let as_other = |args: &[&str]| {
        skiff(args)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
    };
    let preview = as_other(&["update", "cluster", cluster]).run();
    assert_one_clear_error(&preview);
    preview
        .assert_stderr_contains(&format!("cluster {cluster} is in AWS account 123456789012"))
        .assert_stderr_contains("credentials are for account 111111111111")
        .assert_stderr_contains("set AWS_PROFILE to a profile of account 123456789012");
    let delete = as_other(&["delete", "cluster", cluster]).run();
    assert_one_clear_error(&delete);
    delete.assert_stderr_contains("credentials are for account 111111111111");

    // The cluster's own account still plans it: zero changes.
    skiff(&["update", "cluster", cluster, "--detailed-exitcode"])
        .run()
        .assert_exit(0);
}

/// Temporary credentials of `role` from the endpoint's STS, as the harness.
fn assume_role(aws: &LocalAws, role: &str) -> (String, String, String) {
    let authorization = fake_authorization("sts");
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleSessionName=first-run&RoleArn={}",
        role.replace(':', "%3A").replace('/', "%2F")
    );
    let response = aws.request(
        "POST",
        "/",
        &[
            ("User-Agent", HARNESS_USER_AGENT),
            ("Authorization", &authorization),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    );
    let text = String::from_utf8_lossy(&response.body).to_string();
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text
            .find(&open)
            .unwrap_or_else(|| panic!("no {name} in the AssumeRole answer:\n{text}"))
            + open.len();
        let end = start + text[start..].find(&close).expect("a closing tag");
        text[start..end].to_string()
    };
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}
