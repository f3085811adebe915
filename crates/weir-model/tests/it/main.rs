//! Integration tests of weir-model: one binary, one module per subject.

mod odcs_interop;
