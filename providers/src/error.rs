//! Errors of AWS calls, classified so that the executor knows what to retry,
//! and worded so that an operator knows which call failed on what.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How an AWS error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service asked us to slow down, or failed transiently (5xx).
    Transient,
    /// Eventual consistency: something just created is not visible yet.
    NotYetVisible,
    /// Something still depends on the resource being deleted.
    DependencyViolation,
    /// The resource does not exist.
    NotFound,
    /// The request was refused for lack of permission.
    AccessDenied,
    /// The endpoint could not be reached.
    Unreachable,
    /// Anything else: a real error.
    Fatal,
}

/// A failed AWS call.
#[derive(Debug, thiserror::Error)]
#[error("{operation} for {resource} failed: {message}")]
pub struct ProviderError {
    /// The service and operation, e.g. `ec2:CreateVpc`.
    pub operation: String,
    /// The resource key or name the call was about.
    pub resource: String,
    /// The AWS error code, if any.
    pub code: Option<String>,
    /// The message, with the code.
    pub message: String,
    /// How to handle it.
    pub class: ErrorClass,
}

impl ProviderError {
    /// An error that is not an AWS response (e.g. a missing value).
    pub fn other(operation: &str, resource: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            operation: operation.to_string(),
            resource: resource.to_string(),
            code: None,
            message: message.into(),
            class: ErrorClass::Fatal,
        }
    }

    /// Whether AWS said the resource does not exist, whether or not that
    /// may be only "not yet" ([`ErrorClass::NotYetVisible`]): what a lookup
    /// by name, or a wait for a deletion, takes for absence.
    pub fn is_missing(&self) -> bool {
        matches!(self.class, ErrorClass::NotFound | ErrorClass::NotYetVisible)
    }

    /// Whether the call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::Transient | ErrorClass::NotYetVisible | ErrorClass::DependencyViolation
        )
    }
}

/// Codes that mean "no such resource", which right after the resource was
/// created (or read) means "not visible yet": AWS's APIs are eventually
/// consistent ("Eventual consistency in the Amazon EC2 API"; Terraform's
/// AWS provider retries these for its `PropagationTimeout`). EC2 first,
/// then Elastic Load Balancing's, which names EC2's subnets and security
/// groups too.
const NOT_YET_VISIBLE: [&str; 20] = [
    "InvalidGroup.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "NatGatewayNotFound",
    "InvalidAllocationID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidInstanceID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidInstanceProfile.NotFound",
    "InvalidKeyPair.NotFound",
    "LoadBalancerNotFound",
    "TargetGroupNotFound",
    "ListenerNotFound",
    "SubnetNotFound",
    "InvalidSecurityGroup",
    "InvalidTarget",
];

/// Auto Scaling answers `ValidationError` for what it cannot see yet: a new
/// launch template, subnet, target group or group, or an instance profile
/// IAM has not propagated to EC2 yet ("Invalid IAM Instance Profile name",
/// which Terraform's `aws_autoscaling_group` retries too).
fn validation_not_yet_visible(message: &str) -> bool {
    message.contains("Invalid IAM Instance Profile")
        || message.contains("iamInstanceProfile")
        || (message.contains("launch template") && message.contains("does not exist"))
        || (message.contains("subnet ID") && message.contains("does not exist"))
        || message.contains("Provided Target Groups may not be valid")
        || message.contains("AutoScalingGroup name not found")
}

const TRANSIENT: [&str; 11] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "SlowDown",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "IncorrectState",
];

/// Classifies an AWS error code and message.
pub fn classify(code: Option<&str>, message: &str, status: Option<u16>) -> ErrorClass {
    let code = code.unwrap_or_default();
    if TRANSIENT.contains(&code) || matches!(status, Some(500..=599)) {
        return ErrorClass::Transient;
    }
    if NOT_YET_VISIBLE.contains(&code)
        || (code == "InvalidParameterValue"
            && (message.contains("IamInstanceProfile")
                || message.contains("iamInstanceProfile")
                || message.contains("Invalid IAM Instance Profile")))
        || (code == "ValidationError" && validation_not_yet_visible(message))
    {
        return ErrorClass::NotYetVisible;
    }
    if code == "DependencyViolation"
        || code == "ResourceInUse"
        || code == "ResourceInUseFault"
        || code == "DeleteConflict"
        || message.contains("currently in use")
    {
        return ErrorClass::DependencyViolation;
    }
    if code.ends_with("NotFound")
        || code == "NoSuchEntity"
        || code == "NoSuchHostedZone"
        || code.ends_with("NotFoundException")
    {
        return ErrorClass::NotFound;
    }
    if code == "AccessDenied"
        || code == "UnauthorizedOperation"
        || code == "AccessDeniedException"
        || code == "InvalidClientTokenId"
        || code == "AuthFailure"
    {
        return ErrorClass::AccessDenied;
    }
    ErrorClass::Fatal
}

/// Converts an SDK error of `operation` on `resource`.
pub fn aws_error<E>(
    operation: &str,
    resource: &str,
    error: SdkError<E, HttpResponse>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = match &error {
        SdkError::ServiceError(context) => Some(context.raw().status().as_u16()),
        _ => None,
    };
    let code = error.code().map(str::to_string);
    let text = error.message().map(str::to_string);
    let (class, message) = match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
            ErrorClass::Unreachable,
            format!(
                "cannot reach AWS ({}); check AWS_ENDPOINT_URL, the network and the credentials",
                aws_smithy_types::error::display::DisplayErrorContext(&error)
            ),
        ),
        _ => {
            let message = match (&code, &text) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code.clone(),
                (None, Some(text)) => text.clone(),
                (None, None) => {
                    aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()
                }
            };
            (
                classify(code.as_deref(), text.as_deref().unwrap_or_default(), status),
                message,
            )
        }
    };
    let class = if class == ErrorClass::NotYetVisible && removes(operation) {
        // Deleting a resource the refresh just listed: "not found" means
        // it is gone already, not that it is not visible yet.
        ErrorClass::NotFound
    } else {
        class
    };
    ProviderError {
        operation: operation.to_string(),
        resource: resource.to_string(),
        code,
        message,
        class,
    }
}

/// Whether `operation` (`service:Action`) deletes the resource it names.
fn removes(operation: &str) -> bool {
    let action = operation.rsplit(':').next().unwrap_or_default();
    action != "DeleteTags"
        && ["Delete", "Release", "Terminate"]
            .iter()
            .any(|verb| action.starts_with(verb))
}

/// Results of provider calls.
pub type Result<T> = std::result::Result<T, ProviderError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_answers_of_every_service_read_as_not_yet_visible() {
        for code in [
            "InvalidVpcID.NotFound",
            "NatGatewayNotFound",
            "InvalidLaunchTemplateName.NotFoundException",
            "LoadBalancerNotFound",
            "TargetGroupNotFound",
            "SubnetNotFound",
            "InvalidSecurityGroup",
        ] {
            assert_eq!(
                classify(Some(code), "", Some(400)),
                ErrorClass::NotYetVisible,
                "{code}"
            );
        }
        for message in [
            "You must use a valid fully-formed launch template. Value (nodes) for parameter \
             iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
            "You must use a valid fully-formed launch template. The specified launch template, \
             with template ID lt-0123, does not exist.",
            "The subnet ID 'subnet-0123' does not exist",
        ] {
            assert_eq!(
                classify(Some("ValidationError"), message, Some(400)),
                ErrorClass::NotYetVisible,
                "{message}"
            );
        }
        assert_eq!(
            classify(
                Some("InvalidParameterValue"),
                "Value (nodes) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
                Some(400)
            ),
            ErrorClass::NotYetVisible
        );
        // Other validation errors are real ones.
        assert_eq!(
            classify(
                Some("ValidationError"),
                "Max bound, 5, must be greater than or equal to min bound, 6",
                Some(400)
            ),
            ErrorClass::Fatal
        );
        assert_eq!(
            classify(Some("NoSuchEntity"), "", Some(404)),
            ErrorClass::NotFound
        );
    }

    #[test]
    fn deletes_read_their_own_not_found_as_gone() {
        assert!(removes("ec2:DeleteVpc"));
        assert!(removes("ec2:ReleaseAddress"));
        assert!(removes("autoscaling:TerminateInstanceInAutoScalingGroup"));
        assert!(
            !removes("ec2:DeleteTags"),
            "tags of a resource not visible yet"
        );
        assert!(!removes("ec2:CreateRoute"));
    }
}
