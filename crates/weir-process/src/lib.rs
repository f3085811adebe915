//! SQL models on DataFusion: what a model reads (its dependencies, inferred from the SQL), what
//! it produces (its output schema, checked against its contract before anything runs), and
//! where each output column comes from (lineage read off the logical plan).
//!
//! This crate plans and executes queries; it never validates rows (`weir-quality`) and never
//! writes to the lake (`weir-store`).

mod date_pruning;
mod deps;
mod incremental;
mod lineage;
mod model_test;
mod plan;
mod plan_diff;

pub use date_pruning::{DateRangePruning, pruning_session};
pub use deps::{SqlError, find_word, qualified_table_references, table_references};
pub use incremental::{IncrementalPlan, KeyFunction, KeySource, analyze_incremental, analyze_plan};
pub use lineage::{
    ColumnLineage, Edge, EdgeKind, Lineage, Subtype, column_lineage, lineage_of_plan,
};
pub use model_test::{Row, TestOutcome, run_model_test};
pub use plan::{SchemaMismatch, check_output_schema, output_schema};
pub use plan_diff::{PlanDiff, diff_plans};
