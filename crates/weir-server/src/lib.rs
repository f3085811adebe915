//! `weir serve`: the long-running service. It schedules runs (cron ticks in time zones, file
//! arrivals), executes them from the durable queue in the state store with leases and
//! heartbeats, and serves the HTTP API (axum) that lists assets and runs and triggers and
//! cancels runs.
//!
//! This crate owns *when* runs happen and the HTTP surface; *what* a run does is
//! `weir-orchestrate`'s `run_assets`, the same pipeline `weir run` drives.

mod api;
mod backfill;
mod dashboard;
mod error;
mod execute;
mod freshness;
mod metrics;
mod renewer;
mod service;
mod views;

pub use backfill::{BackfillReport, BackfillRequest, PartitionState, backfill};
pub use error::ServeError;
pub use service::{Listening, ServeOptions, Working, serve, work};

/// The OpenAPI document of the HTTP API, as `GET /openapi.json` serves it.
pub const OPENAPI: &str = include_str!("../openapi.json");
