//! Structural validation of a contract against the official ODCS JSON schema of the version it
//! declares, before weir reads it.
//!
//! The schemas are the ones the `open-data-contract-standard` PyPI package ships (see
//! `schemas/odcs/README.md` for where they come from and their licences), embedded in the
//! binary so that validation needs no network: a contract weir accepts is one every ODCS tool
//! accepts, and one the standard rejects is rejected with the schema's own reason.

use std::sync::OnceLock;

use jsonschema::paths::LocationSegment;

/// The ODCS versions weir reads, newest first.
pub const SUPPORTED_API_VERSIONS: &[&str] = &["v3.2.0", "v3.1.0", "v3.0.2", "v3.0.1", "v3.0.0"];

/// One schema per distinct shape: v3.0.0 and v3.0.1 share the v3.0.1 schema (its `apiVersion`
/// enum lists both).
const SCHEMAS: [(&str, &str); 4] = [
    (
        "v3.0.1",
        include_str!("../schemas/odcs/odcs-v3.0.1.schema.json"),
    ),
    (
        "v3.0.2",
        include_str!("../schemas/odcs/odcs-v3.0.2.schema.json"),
    ),
    (
        "v3.1.0",
        include_str!("../schemas/odcs/odcs-v3.1.0.schema.json"),
    ),
    (
        "v3.2.0",
        include_str!("../schemas/odcs/odcs-v3.2.0.schema.json"),
    ),
];

static VALIDATORS: [OnceLock<Result<jsonschema::Validator, String>>; 4] =
    [const { OnceLock::new() }; 4];

/// A place where a contract breaks its declared version's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as the path of keys and indexes from the document root.
    pub path: Vec<PathSegment>,
    /// The schema's reason.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl Violation {
    /// The path in weir's field notation: `schema[0].properties[1].logicalType`.
    pub fn field(&self) -> String {
        let mut field = String::new();
        for segment in &self.path {
            match segment {
                PathSegment::Key(key) => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(key);
                }
                PathSegment::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        field
    }
}

/// Validates `document` (the contract as JSON) against the schema of `api_version`. An
/// unsupported version is an `Err` naming the supported ones.
pub fn validate(api_version: &str, document: &serde_json::Value) -> Result<Vec<Violation>, String> {
    let schema_version = match api_version {
        "v3.0.0" | "v3.0.1" => "v3.0.1",
        other => other,
    };
    let Some(index) = SCHEMAS.iter().position(|(v, _)| *v == schema_version) else {
        return Err(format!(
            "unsupported apiVersion `{api_version}`; expected one of {}",
            SUPPORTED_API_VERSIONS.join(", ")
        ));
    };
    let validator = VALIDATORS[index]
        .get_or_init(|| {
            let schema: serde_json::Value =
                serde_json::from_str(SCHEMAS[index].1).map_err(|e| e.to_string())?;
            jsonschema::draft201909::new(&schema).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("the embedded ODCS {schema_version} schema does not load: {e}"))?;
    let mut explained = Vec::new();
    for error in validator.iter_errors(document) {
        explain(&error, &mut explained);
    }
    // One root cause, one diagnostic: properties the schema could not evaluate because a
    // subschema already failed on the same object (or inside it) are that failure's echo.
    let echo = |path: &Vec<PathSegment>, message: &String| {
        message.starts_with("Unevaluated properties")
            && explained
                .iter()
                .any(|(p, m)| p.starts_with(path) && !m.starts_with("Unevaluated properties"))
    };
    let mut violations: Vec<Violation> = Vec::new();
    for (path, message) in explained.iter().filter(|(p, m)| !echo(p, m)) {
        // An unexpected key is pointed at itself, not at the object holding it.
        let mut path = path.clone();
        let mut message = message.clone();
        if let Some(key) = message
            .rsplit_once("('")
            .and_then(|(_, rest)| rest.strip_suffix("' was unexpected)"))
        {
            path.push(PathSegment::Key(key.to_string()));
        }
        if message.contains("more than one of the schemas listed in the 'oneOf'")
            && path
                .iter()
                .any(|s| *s == PathSegment::Key("quality".into()))
        {
            message.push_str(" (a quality rule takes exactly one operator)");
        }
        let violation = Violation { path, message };
        if !violations.contains(&violation) {
            violations.push(violation);
        }
    }
    Ok(violations)
}

/// The reasons behind one schema error, as (path, message). A `oneOf`/`anyOf` that no branch
/// matches is explained by the branch that got furthest into the document (its deepest
/// error), the way a person reads "which alternative did they mean": `mustBeGreaterThan:
/// lots` fails every operator branch, and the one about `mustBeGreaterThan` says the value is
/// not a number. When no branch gets deeper than the `oneOf` itself, its own message stays.
fn explain(error: &jsonschema::ValidationError<'_>, out: &mut Vec<(Vec<PathSegment>, String)>) {
    let path: Vec<PathSegment> = error
        .instance_path()
        .segments()
        .map(|s| match s {
            LocationSegment::Property(p) => PathSegment::Key(p.to_string()),
            LocationSegment::Index(i) => PathSegment::Index(i),
        })
        .collect();
    let depth = |e: &jsonschema::ValidationError<'_>| e.instance_path().segments().count();
    if let jsonschema::error::ValidationErrorKind::OneOfNotValid { context }
    | jsonschema::error::ValidationErrorKind::AnyOf { context } = error.kind()
        && let Some(branch) = context.iter().filter(|b| !b.is_empty()).max_by_key(|b| {
            let deepest = b.iter().map(depth).max().unwrap_or(0);
            (deepest, std::cmp::Reverse(b.len()))
        })
        && branch.iter().map(depth).max().unwrap_or(0) > path.len()
    {
        for inner in branch {
            explain(inner, out);
        }
        return;
    }
    // The schema's reason quotes the offending value; a whole object is too long to read.
    let full = error.to_string();
    let message = if full.len() <= 160 {
        full
    } else {
        error.masked().to_string()
    };
    out.push((path, message));
}

/// The 1-based line of the value at `path` in a block-style YAML `text`, found by following
/// the indentation: a key is looked for among the lines of the current block at the block's
/// own indentation, an index among its `- ` items. `None` when the text is not laid out that
/// way (flow style, anchors): the diagnostic then names the field without a line.
pub fn line_of(text: &str, path: &[PathSegment]) -> Option<usize> {
    let lines: Vec<Line> = text.lines().map(Line::parse).collect();
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    // The column of the keys of the current block, when it is a sequence item's mapping.
    let mut item_keys: Option<usize> = None;
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                let indent = item_keys.or_else(|| lines[lo..hi].iter().find_map(|l| l.content))?;
                let at = (lo..hi).find(|&i| {
                    lines[i].content == Some(indent) && lines[i].key.as_deref() == Some(key)
                })?;
                // The key's value: the lines below it, up to a key at its column or left of it
                // (a `- ` at its own column still belongs to it: a sequence value).
                let end = (at + 1..hi)
                    .find(|&i| match (lines[i].content, lines[i].dash) {
                        (Some(_), Some(dash)) => dash < indent,
                        (Some(content), None) => content <= indent,
                        (None, _) => false,
                    })
                    .unwrap_or(hi);
                found = Some(at + 1);
                (lo, hi, item_keys) = (at + 1, end, None);
            }
            PathSegment::Index(n) => {
                let dash = lines[lo..hi].iter().find_map(|l| l.dash)?;
                let at = (lo..hi).filter(|&i| lines[i].dash == Some(dash)).nth(*n)?;
                let end = (at + 1..hi)
                    .find(|&i| match (lines[i].content, lines[i].dash) {
                        (Some(_), Some(d)) => d <= dash,
                        (Some(content), None) => content <= dash,
                        (None, _) => false,
                    })
                    .unwrap_or(hi);
                found = Some(at + 1);
                (lo, hi, item_keys) = (at, end, lines[at].content);
            }
        }
    }
    found
}

/// What [`line_of`] needs to know about a line.
struct Line {
    /// The column where the line's mapping content starts (after any `- `), for non-blank,
    /// non-comment lines.
    content: Option<usize>,
    /// The column of the innermost `- ` that starts a sequence item on this line.
    dash: Option<usize>,
    /// The key, when the content is `key: ...`.
    key: Option<String>,
}

impl Line {
    fn parse(raw: &str) -> Line {
        let indent = raw.len() - raw.trim_start().len();
        let mut rest = &raw[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            return Line {
                content: None,
                dash: None,
                key: None,
            };
        }
        let mut column = indent;
        let mut dash = None;
        while rest.starts_with("- ") || rest == "-" {
            dash = Some(column);
            let after = rest[1..].trim_start();
            column += rest.len() - after.len();
            rest = after;
        }
        let key = rest.split_once(':').and_then(|(k, v)| {
            {
                let k = k.trim().trim_matches(['"', '\'']);
                (v.is_empty() || v.starts_with(' ')) && !k.is_empty() && !k.contains(' ')
            }
            .then(|| k.to_string())
        });
        Line {
            content: (!rest.is_empty()).then_some(column),
            dash,
            key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> PathSegment {
        PathSegment::Key(k.into())
    }

    const TEXT: &str = "apiVersion: v3.0.2
kind: DataContract
team:
  - username: a
    role: owner
schema:
  - name: orders
    properties:
      - name: id
        logicalType: integer
      # a comment
      - name: at
        logicalType: timestamp
    quality:
    - metric: rowCount
      mustBeGreaterThan: 0
";

    #[test]
    fn lines_follow_keys_and_indexes() {
        use PathSegment::Index;
        assert_eq!(line_of(TEXT, &[key("kind")]), Some(2));
        assert_eq!(
            line_of(TEXT, &[key("team"), Index(0), key("role")]),
            Some(5)
        );
        assert_eq!(
            line_of(
                TEXT,
                &[
                    key("schema"),
                    Index(0),
                    key("properties"),
                    Index(1),
                    key("logicalType")
                ]
            ),
            Some(13)
        );
        assert_eq!(
            line_of(
                TEXT,
                &[
                    key("schema"),
                    Index(0),
                    key("quality"),
                    Index(0),
                    key("mustBeGreaterThan")
                ]
            ),
            Some(16)
        );
        assert_eq!(
            line_of(TEXT, &[key("schema"), Index(0), key("nothing")]),
            None
        );
    }

    #[test]
    fn the_declared_version_decides() {
        let contract = |version: &str, logical: &str| {
            serde_json::json!({
                "apiVersion": version, "kind": "DataContract", "id": "c", "version": "1.0.0",
                "status": "active",
                "schema": [{"name": "t", "properties": [{"name": "at", "logicalType": logical}]}]
            })
        };
        assert_eq!(
            validate("v3.1.0", &contract("v3.1.0", "timestamp")),
            Ok(vec![])
        );
        let violations = validate("v3.0.2", &contract("v3.0.2", "timestamp")).expect("known");
        assert!(
            violations
                .iter()
                .any(|v| v.field() == "schema[0].properties[0].logicalType"
                    && v.message.contains("timestamp")),
            "{violations:?}"
        );
        assert!(validate("v9.0.0", &contract("v9.0.0", "string")).is_err());
    }
}
