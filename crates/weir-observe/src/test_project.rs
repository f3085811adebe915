//! A small project for this crate's tests (tests only).

use weir_model::Project;

/// A project in `dir` with one CSV source, `orders`, whose source file adds `settings` (TOML
/// lines) to its format and path.
pub(crate) fn one_source(dir: &std::path::Path, settings: &str) -> Project {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).expect("folder");
        std::fs::write(path, text).expect("write");
    };
    write("weir.toml", "[project]\nname = \"shop\"\n");
    write(
        "contracts/orders.odcs.yaml",
        "apiVersion: v3.1.0\nkind: DataContract\nid: orders\nversion: 1.0.0\nstatus: active\nschema:\n  - name: orders\n    properties:\n      - name: id\n        logicalType: integer\n",
    );
    write(
        "sources/orders.toml",
        &format!("format = \"csv\"\npath = \"data/*.csv\"\n{settings}"),
    );
    let (project, diagnostics) = weir_model::load_project(dir);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    project.expect("project")
}
