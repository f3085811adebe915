//! The project model: what a weir project *is*, parsed and checked, with no I/O engine.
//!
//! This crate reads text (`weir.toml`, ODCS contracts, source definitions) and turns it into
//! typed [`Project`] / [`Asset`] values, collecting every problem as a [`Diagnostic`] that names
//! the file, line and field. It never touches the lake, the state store or the network: every
//! other crate depends on it, so it must stay cheap and side-effect free (apart from reading the
//! project's own text files in [`load_project`]).

mod anomalies;
mod channel;
mod contract;
mod contract_diff;
mod contract_draft;
mod counts;
mod diagnostic;
mod jobs;
mod model_def;
mod model_tests;
mod odcs_schema;
mod openlineage_config;
mod partition;
mod project;
mod slo_config;
mod source;
mod telemetry;
mod types;

pub use anomalies::{AnomalyConfig, DEFAULT_ANOMALY_SENSITIVITY};
pub use channel::{Channel, Target};
pub use contract::{
    Contract, LogicalType, LogicalTypeOptions, Operator, QualityRule, RuleKind, SchemaObject,
    SchemaProperty, Severity, SlaProperty, Support, Team, TeamMember, Unit, parse_contract,
};
pub use contract_diff::{Change, ChangeClass, diff_contracts};
pub use contract_draft::{
    ContractDraft, DraftColumn, WRITTEN_API_VERSION, asset_name_from, logical_type_of, yaml_scalar,
};
pub use counts::TableCounts;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use jobs::{CatchUp, FRESHNESS_LEAD, JobConfig, ServeConfig};
pub use model_def::{Materialization, ModelDef};
pub use model_tests::{
    CheckVerdict, ContractExpectation, ContractTest, LocatedContractTest, LocatedTest, ModelTest,
    TestRow, load_contract_tests, load_model_tests,
};
pub use odcs_schema::SUPPORTED_API_VERSIONS;
pub use openlineage_config::OpenLineageConfig;
pub use partition::{Grain, MAX_PARTITIONS, PartitionKey, Partitioning, partition_range};
pub use project::{
    Asset, Environment, OnDefinitionChange, Project, ProjectConfig, ProjectSection, TeamConfig,
    check_environment_name, did_you_mean, is_valid_asset_name, load_project, shadow_key,
    slash_path,
};
pub use slo_config::SloConfig;
pub use source::{
    DEFAULT_DELIMITER, DEFAULT_QUOTE, FileFormat, MAX_RECORD_BYTES, OnChange, QuarantineLimit,
    SourceDef, SourceOptions,
};
pub use telemetry::{ComponentKind, ComponentMetrics, ComponentReport, ERROR_STAGES};
pub use types::arrow_type;
