//! Why a node's user-data could not be rendered.
//!
//! Every variant names the setting to fix: the values come from the cluster
//! spec, so a bad one is a user error that must point back at the spec, not
//! a template bug to debug.

use skiff_api::KubernetesVersion;

/// A node's bootstrap could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A setting has a value the bootstrap cannot use.
    #[error("bootstrap setting `{setting}` is {value:?}: {problem}")]
    InvalidSetting {
        /// The [`crate::NodeBootstrap`] field, e.g. `state_store.region` or `node_labels`.
        setting: String,
        /// The offending value.
        value: String,
        /// What is wrong and what would be accepted.
        problem: String,
    },

    /// The Kubernetes version is outside the range skiff can bootstrap.
    #[error(
        "Kubernetes {version} cannot be bootstrapped: skiff supports {supported}; \
         set spec.kubernetesVersion to a supported release"
    )]
    UnsupportedVersion {
        /// The requested version.
        version: KubernetesVersion,
        /// The supported range, e.g. `1.29.x to 1.35.x`.
        supported: String,
    },

    /// An addon has no release skiff can render: an unknown
    /// `spec.addons.<addon>.version`, or a Kubernetes minor without one.
    #[error("{field}: {problem}")]
    AddonRelease {
        /// The field to fix, e.g. `spec.addons.metricsServer.version`.
        field: String,
        /// What is wrong, naming the releases skiff knows.
        problem: String,
    },

    /// An addon's rendered manifest defines an object skiff cannot name
    /// (a document without `apiVersion`, `kind` or `metadata.name`).
    #[error("{template}: {problem}")]
    AddonManifest {
        /// The template, e.g. `addons/metrics-server.yaml.j2`.
        template: String,
        /// What is wrong, naming the document.
        problem: String,
    },

    /// Compressing a file for the user-data failed (it cannot, in memory).
    #[error("could not compress a file of the user-data")]
    Compress {
        /// The I/O error from the compressor.
        #[source]
        source: std::io::Error,
    },

    /// A template failed to render: a bug in skiff, since inputs are validated first.
    #[error("template {template} failed to render (a skiff bug; please report it)")]
    Render {
        /// The template's file name under `templates/templates/`.
        template: String,
        /// What minijinja reported.
        #[source]
        source: minijinja::Error,
    },
}

impl TemplateError {
    /// An [`TemplateError::InvalidSetting`] for `setting`.
    pub(crate) fn invalid(
        setting: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        TemplateError::InvalidSetting {
            setting: setting.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }
}
