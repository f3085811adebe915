//! Contract enforcement: the row-level pass that splits every incoming row into *stored* or
//! *quarantined* (with the rule and the reason), and the dataset-level audit that runs all of a
//! table's metrics in one fused DataFusion query before anything is published.
//!
//! This crate decides; it never writes. The orchestrator hands it batches and a query context,
//! and gets back typed batches, quarantined rows and [`CheckResult`]s.

mod audit;
mod check;
mod contract_test;
mod convert;
mod error;
mod exact;
mod keys;
mod profile;
mod rules;
mod validate;

pub use audit::{AuditScope, audit};
pub use check::{CheckResult, CheckScope};
pub use contract_test::{ContractTestOutcome, run_contract_test};
pub use error::{QualityError, Result};
pub use keys::{KeyGuard, Origin};
pub use profile::{ColumnProfile, LOW_CARDINALITY, profile};
pub use rules::{DatasetRule, DatasetRuleKind, KeyRule, ParseOptions};
pub use validate::{QuarantinedRow, Validated, Validator};
