//! Integration tests of weir-quality: one binary, one module per concern.

mod audit;
mod keys;
mod narrowing;
