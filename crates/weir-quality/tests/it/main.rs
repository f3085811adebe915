//! Integration tests of weir-quality: one binary, one module per concern.

mod keys;
mod narrowing;
