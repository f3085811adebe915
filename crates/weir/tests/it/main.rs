//! End-to-end tests: the real `weir` binary on real project folders.

mod check;
mod cli_output;
mod contracts_interop;
mod crash;
mod csv_e2e;
mod e2e;
mod first_project;
mod incidents;
mod incremental;
mod isolate;
mod journal;
mod json_output;
mod lake_record;
mod leases;
mod malformed;
mod narrowing;
mod on_change;
mod partitions;
mod python_reader;
mod quarantine;
mod randomized;
mod readme_walkthrough;
mod serve;
mod support;
mod vacuum;
mod workers;
