//! Integration tests of weir-process (one test binary per crate).

mod lineage_vs_sqlglot;
