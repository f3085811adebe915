//! ODCS v3.1 data contracts: strict parsing (unknown keys, wrong types and missing required
//! fields are errors with file, line and field) and the typed view the rest of weir uses.
//!
//! Where the ODCS text and its JSON schema disagree, weir follows the JSON schema, with these
//! documented choices: one operator per rule (the schema's `oneOf`), `mustBeBetween` and
//! `mustNotBeBetween` are inclusive of their bounds (as datacontract-cli does), and SQL rules
//! accept both the `{object}`/`{property}` and `${table}`/`${column}` placeholder spellings.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use crate::diagnostic::Diagnostic;

/// An ODCS v3 data contract (`kind: DataContract`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub version: String,
    pub api_version: String,
    pub kind: String,
    pub id: String,
    pub status: String,
    pub name: Option<String>,
    pub tenant: Option<String>,
    pub domain: Option<String>,
    pub data_product: Option<String>,
    pub tags: Option<Vec<String>>,
    pub contract_created_ts: Option<String>,
    pub description: Option<Description>,
    pub servers: Option<Vec<BTreeMap<String, Value>>>,
    #[serde(default)]
    pub schema: Vec<SchemaObject>,
    pub team: Option<Team>,
    #[serde(default)]
    pub support: Vec<Support>,
    pub roles: Option<Vec<Role>>,
    pub price: Option<Price>,
    #[serde(default)]
    pub sla_properties: Vec<SlaProperty>,
    pub sla_default_element: Option<String>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    /// v3.2: guidance for AI agents and semantic layers; read, not used by weir.
    pub context: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    pub purpose: Option<String>,
    pub usage: Option<String>,
    pub limitations: Option<String>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthoritativeDefinition {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomProperty {
    pub id: Option<String>,
    pub property: String,
    pub value: Value,
    pub description: Option<String>,
    /// v3.2: the vendor the property is meant for.
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: Option<String>,
    pub role: String,
    pub description: Option<String>,
    pub access: Option<String>,
    pub first_level_approvers: Option<String>,
    pub second_level_approvers: Option<String>,
    pub custom_properties: Option<Vec<CustomProperty>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub price_amount: Option<f64>,
    pub price_currency: Option<String>,
    pub price_unit: Option<String>,
}

/// One table (ODCS `SchemaObject`). weir maps one contract to one asset, so a contract has
/// exactly one schema object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaObject {
    pub name: String,
    pub id: Option<String>,
    pub physical_name: Option<String>,
    pub physical_type: Option<String>,
    pub logical_type: Option<String>,
    pub business_name: Option<String>,
    pub description: Option<String>,
    pub data_granularity_description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub relationships: Option<Vec<BTreeMap<String, Value>>>,
    #[serde(default)]
    pub quality: Vec<QualityRule>,
    #[serde(default)]
    pub properties: Vec<SchemaProperty>,
    /// v3.2 additions weir reads but does not use.
    pub context: Option<Value>,
    pub deprecated: Option<bool>,
    pub synonyms: Option<Value>,
}

/// One column (ODCS `SchemaProperty`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaProperty {
    pub name: String,
    pub id: Option<String>,
    pub business_name: Option<String>,
    pub description: Option<String>,
    pub physical_name: Option<String>,
    pub physical_type: Option<String>,
    pub logical_type: Option<LogicalType>,
    pub logical_type_options: Option<LogicalTypeOptions>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub primary_key: bool,
    pub primary_key_position: Option<i64>,
    pub partitioned: Option<bool>,
    pub partition_key_position: Option<i64>,
    pub classification: Option<String>,
    pub critical_data_element: Option<bool>,
    pub encrypted_name: Option<String>,
    pub transform_source_objects: Option<Vec<String>>,
    pub transform_logic: Option<String>,
    pub transform_description: Option<String>,
    pub examples: Option<Vec<Value>>,
    pub relationships: Option<Vec<BTreeMap<String, Value>>>,
    #[serde(default)]
    pub quality: Vec<QualityRule>,
    pub tags: Option<Vec<String>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    /// v3.2: the values the column may hold. weir enforces them row by row: a row with
    /// another value is quarantined as `<column>.enum`, like a `logicalTypeOptions` check.
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<EnumValue>>,
    /// v3.2 additions weir reads but does not use.
    pub semantic_type: Option<String>,
    pub deprecated: Option<bool>,
    pub synonyms: Option<Value>,
}

/// One allowed value of a v3.2 property `enum`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnumValue {
    pub value: Value,
    pub label: Option<String>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub custom_properties: Option<Vec<CustomProperty>>,
}

impl SchemaProperty {
    /// The values of a v3.2 `enum`, as text (how row values are compared with them).
    pub fn enum_strings(&self) -> Option<Vec<String>> {
        self.enum_values.as_ref().map(|values| {
            values
                .iter()
                .filter_map(|v| value_as_string(&v.value))
                .collect()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogicalType {
    String,
    Date,
    Timestamp,
    Time,
    Number,
    Integer,
    Object,
    Array,
    Boolean,
}

/// The union of ODCS `logicalTypeOptions` over all logical types; which keys apply to which
/// type is checked in [`parse_contract`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogicalTypeOptions {
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<String>,
    pub format: Option<String>,
    pub minimum: Option<Value>,
    pub maximum: Option<Value>,
    pub exclusive_minimum: Option<Value>,
    pub exclusive_maximum: Option<Value>,
    pub multiple_of: Option<f64>,
    pub timezone: Option<bool>,
    pub default_timezone: Option<String>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub required: Option<Vec<String>>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: Option<bool>,
}

/// An ODCS quality rule, at schema or property level.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityRule {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub rule_type: Option<String>,
    pub metric: Option<String>,
    pub rule: Option<String>,
    pub arguments: Option<BTreeMap<String, Value>>,
    pub unit: Option<Unit>,
    pub valid_values: Option<Vec<Value>>,
    pub query: Option<String>,
    pub engine: Option<String>,
    pub implementation: Option<Value>,
    pub dimension: Option<String>,
    pub method: Option<String>,
    pub severity: Option<String>,
    pub business_impact: Option<String>,
    pub schedule: Option<String>,
    pub scheduler: Option<String>,
    pub tags: Option<Vec<String>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    pub must_be: Option<f64>,
    pub must_not_be: Option<f64>,
    pub must_be_greater_than: Option<f64>,
    pub must_be_greater_or_equal_to: Option<f64>,
    pub must_be_less_than: Option<f64>,
    pub must_be_less_or_equal_to: Option<f64>,
    pub must_be_between: Option<[f64; 2]>,
    pub must_not_be_between: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Rows,
    Percent,
}

/// A rule's threshold: the measured value must satisfy it for the check to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operator {
    MustBe(f64),
    MustNotBe(f64),
    MustBeGreaterThan(f64),
    MustBeGreaterOrEqualTo(f64),
    MustBeLessThan(f64),
    MustBeLessOrEqualTo(f64),
    MustBeBetween(f64, f64),
    MustNotBeBetween(f64, f64),
}

impl Operator {
    pub fn holds(&self, value: f64) -> bool {
        match *self {
            Operator::MustBe(x) => value == x,
            Operator::MustNotBe(x) => value != x,
            Operator::MustBeGreaterThan(x) => value > x,
            Operator::MustBeGreaterOrEqualTo(x) => value >= x,
            Operator::MustBeLessThan(x) => value < x,
            Operator::MustBeLessOrEqualTo(x) => value <= x,
            Operator::MustBeBetween(lo, hi) => lo <= value && value <= hi,
            Operator::MustNotBeBetween(lo, hi) => value < lo || value > hi,
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operator::MustBe(x) => write!(f, "mustBe {x}"),
            Operator::MustNotBe(x) => write!(f, "mustNotBe {x}"),
            Operator::MustBeGreaterThan(x) => write!(f, "mustBeGreaterThan {x}"),
            Operator::MustBeGreaterOrEqualTo(x) => write!(f, "mustBeGreaterOrEqualTo {x}"),
            Operator::MustBeLessThan(x) => write!(f, "mustBeLessThan {x}"),
            Operator::MustBeLessOrEqualTo(x) => write!(f, "mustBeLessOrEqualTo {x}"),
            Operator::MustBeBetween(lo, hi) => write!(f, "mustBeBetween [{lo}, {hi}]"),
            Operator::MustNotBeBetween(lo, hi) => write!(f, "mustNotBeBetween [{lo}, {hi}]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a quality rule measures, resolved from ODCS `type`/`metric`/`arguments`.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    NullValues {
        column: String,
    },
    MissingValues {
        column: String,
        missing: Vec<Option<String>>,
    },
    /// Row-level: a failing row is quarantined; the metric counts the run's failing rows.
    InvalidValues {
        column: String,
        valid_values: Option<Vec<String>>,
        pattern: Option<String>,
    },
    DuplicateValues {
        columns: Vec<String>,
    },
    RowCount,
    Sql {
        query: String,
    },
}

impl QualityRule {
    /// The threshold, if exactly one operator is set (the JSON schema's `oneOf`).
    pub fn operators(&self) -> Vec<Operator> {
        let mut ops = Vec::new();
        if let Some(x) = self.must_be {
            ops.push(Operator::MustBe(x));
        }
        if let Some(x) = self.must_not_be {
            ops.push(Operator::MustNotBe(x));
        }
        if let Some(x) = self.must_be_greater_than {
            ops.push(Operator::MustBeGreaterThan(x));
        }
        if let Some(x) = self.must_be_greater_or_equal_to {
            ops.push(Operator::MustBeGreaterOrEqualTo(x));
        }
        if let Some(x) = self.must_be_less_than {
            ops.push(Operator::MustBeLessThan(x));
        }
        if let Some(x) = self.must_be_less_or_equal_to {
            ops.push(Operator::MustBeLessOrEqualTo(x));
        }
        if let Some([lo, hi]) = self.must_be_between {
            ops.push(Operator::MustBeBetween(lo, hi));
        }
        if let Some([lo, hi]) = self.must_not_be_between {
            ops.push(Operator::MustNotBeBetween(lo, hi));
        }
        ops
    }

    /// ODCS leaves `severity` free text with examples; anything but info/warning blocks.
    pub fn severity(&self) -> Severity {
        match self
            .severity
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("info") => Severity::Info,
            Some("warning") | Some("warn") => Severity::Warning,
            _ => Severity::Error,
        }
    }

    pub fn unit(&self) -> Unit {
        self.unit.unwrap_or(Unit::Rows)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub members: Vec<TeamMember>,
    pub tags: Option<Vec<String>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamMember {
    pub id: Option<String>,
    pub username: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub date_in: Option<String>,
    pub date_out: Option<String>,
    pub replaced_by_username: Option<String>,
    pub tags: Option<Vec<String>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Support {
    pub id: Option<String>,
    pub channel: String,
    pub url: Option<String>,
    pub description: Option<String>,
    pub tool: Option<String>,
    pub scope: Option<String>,
    pub invitation_url: Option<String>,
    pub tags: Option<Vec<String>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlaProperty {
    pub id: Option<String>,
    pub property: String,
    pub value: Value,
    pub value_ext: Option<Value>,
    pub unit: Option<String>,
    pub element: Option<String>,
    pub driver: Option<String>,
    pub description: Option<String>,
    pub scheduler: Option<String>,
    pub schedule: Option<String>,
    /// v3.2 additions.
    pub authoritative_definitions: Option<Vec<AuthoritativeDefinition>>,
    pub custom_properties: Option<Vec<CustomProperty>>,
}

impl SlaProperty {
    /// The value as a duration in seconds, when it is a number with a time unit (`w`, `d`,
    /// `h`, `m`, `s`, `ms`, or the words, singular or plural; ODCS leaves the unit free-form).
    pub fn seconds(&self) -> Option<f64> {
        let value = match &self.value {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        let unit = self.unit.as_deref()?.trim().to_ascii_lowercase();
        let per = match unit.as_str() {
            "w" | "week" | "weeks" => 604_800.0,
            "d" | "day" | "days" => 86_400.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "ms" | "millisecond" | "milliseconds" => 0.001,
            _ => return None,
        };
        Some(value * per)
    }
}

impl Contract {
    /// The contract's `latency` (or `freshness`) SLA in seconds: how old the data may be.
    pub fn latency_seconds(&self) -> Option<f64> {
        self.sla_properties
            .iter()
            .filter(|p| {
                let name = p.property.to_ascii_lowercase();
                name == "latency" || name == "freshness"
            })
            .find_map(SlaProperty::seconds)
    }

    /// The contract's `frequency` SLA in seconds: how often new data is published.
    pub fn frequency_seconds(&self) -> Option<f64> {
        self.sla_properties
            .iter()
            .filter(|p| p.property.eq_ignore_ascii_case("frequency"))
            .find_map(SlaProperty::seconds)
    }

    /// A percentage SLA property (`successRate`, `availability`, `errorRate`): its value when
    /// it is a number from 0 to 100 and its unit, if any, says percent.
    pub fn sla_percent(&self, property: &str) -> Option<f64> {
        self.sla_properties
            .iter()
            .filter(|p| p.property.eq_ignore_ascii_case(property))
            .find_map(|p| {
                let unit_ok = p.unit.as_deref().is_none_or(|u| {
                    matches!(
                        u.trim().to_ascii_lowercase().as_str(),
                        "%" | "percent" | "pct"
                    )
                });
                let value = match &p.value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
                    _ => None,
                }?;
                (unit_ok && (0.0..=100.0).contains(&value)).then_some(value)
            })
    }

    /// The one schema object weir maps to an asset.
    pub fn table(&self) -> Option<&SchemaObject> {
        self.schema.first()
    }

    /// Usernames of the members whose role is `owner`: ODCS has no owner field, so ownership
    /// is the team's members with that role.
    pub fn owners(&self) -> Vec<String> {
        self.team
            .iter()
            .flat_map(|t| &t.members)
            .filter(|m| {
                m.role
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("owner"))
            })
            .map(|m| m.username.clone())
            .collect()
    }

    pub fn team_name(&self) -> Option<&str> {
        self.team.as_ref().and_then(|t| t.name.as_deref())
    }
}

/// Parses and checks one contract file. Returns the contract when it is usable, and every
/// problem found.
///
/// In three steps: the YAML must parse; it must be valid against the official JSON schema of
/// the ODCS version it declares (every violation is reported, with the schema's reason, the
/// field path and the line); then weir reads it, mapping the forms older versions use
/// (`team` as a list of members, v3.0 rule names) onto the v3.1 shape, and applies its own
/// semantic checks. Keys the standard allows but does not define are ignored with a warning.
pub fn parse_contract(path: &Path, text: &str) -> (Option<Contract>, Vec<Diagnostic>) {
    let document: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(err) => return (None, vec![yaml_error(path, &err)]),
    };
    let Some(api_version) = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return (
            None,
            vec![
                Diagnostic::error(
                    path,
                    format!(
                        "a contract needs `apiVersion` (one of {})",
                        crate::SUPPORTED_API_VERSIONS.join(", ")
                    ),
                )
                .field("apiVersion")
                .at(find_line(text, "apiVersion"), None),
            ],
        );
    };
    let json = match serde_json::to_value(&document) {
        Ok(json) => json,
        Err(e) => {
            return (
                None,
                vec![Diagnostic::error(
                    path,
                    format!("the contract cannot be read as JSON data (ODCS is JSON): {e}"),
                )],
            );
        }
    };
    match crate::odcs_schema::validate(&api_version, &json) {
        Err(message) => {
            return (
                None,
                vec![
                    Diagnostic::error(path, message)
                        .field("apiVersion")
                        .at(find_line(text, "apiVersion"), None),
                ],
            );
        }
        Ok(violations) if !violations.is_empty() => {
            let diagnostics = violations
                .iter()
                .map(|v| {
                    Diagnostic::error(path, format!("not valid ODCS {api_version}: {}", v.message))
                        .field(v.field())
                        .at(crate::odcs_schema::line_of(text, &v.path), None)
                })
                .collect();
            return (None, diagnostics);
        }
        Ok(_) => {}
    }
    let document = older_forms_as_v31(document);
    let mut ignored = Vec::new();
    let contract: Contract =
        match serde_ignored::deserialize(document, |p| ignored.push(p.to_string())) {
            Ok(c) => c,
            Err(err) => {
                let message = err.to_string();
                let (field, message) = split_field_path(&message);
                let mut d = Diagnostic::error(path, message);
                if let Some(field) = field {
                    d = d.field(field);
                }
                return (None, vec![d]);
            }
        };
    let mut diagnostics = Vec::new();
    let locate = |field: &str| find_line(text, field);
    for field in ignored {
        let last = field.rsplit('.').next().unwrap_or(&field).to_string();
        diagnostics.push(
            Diagnostic::warning(
                path,
                format!(
                    "`{last}` is not a field ODCS {api_version} defines here; weir ignores it (a misspelling?)"
                ),
            )
            .field(field)
            .at(locate(&format!("{last}:")), None),
        );
    }
    if contract.kind != "DataContract" {
        diagnostics.push(
            Diagnostic::error(
                path,
                format!("kind must be `DataContract`, found `{}`", contract.kind),
            )
            .field("kind")
            .at(locate("kind"), None),
        );
    }
    match contract.schema.len() {
        0 => diagnostics.push(
            Diagnostic::error(
                path,
                "a contract needs one `schema` object describing the asset's table",
            )
            .field("schema"),
        ),
        1 => {}
        n => diagnostics.push(
            Diagnostic::error(
                path,
                format!(
                    "weir maps one contract to one asset, but this contract has {n} schema objects"
                ),
            )
            .field("schema")
            .at(locate("schema"), None),
        ),
    }
    if let Some(table) = contract.table() {
        check_table(path, text, table, &mut diagnostics);
    }
    if contract.owners().is_empty() {
        diagnostics.push(
            Diagnostic::warning(
                path,
                "no team member has `role: owner`; alerts will have no owner",
            )
            .field("team.members"),
        );
    }
    (Some(contract), diagnostics)
}

fn check_table(path: &Path, text: &str, table: &SchemaObject, diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    for (idx, prop) in table.properties.iter().enumerate() {
        let field = format!("schema[0].properties[{idx}]");
        let line = find_line(text, &prop.name);
        if !seen.insert(prop.name.as_str()) {
            diagnostics.push(
                Diagnostic::error(path, format!("duplicate property `{}`", prop.name))
                    .field(format!("{field}.name"))
                    .at(line, None),
            );
        }
        if prop.logical_type.is_none() {
            diagnostics.push(
                Diagnostic::warning(
                    path,
                    format!(
                        "property `{}` has no logicalType; stored as string",
                        prop.name
                    ),
                )
                .field(format!("{field}.logicalType"))
                .at(line, None),
            );
        }
        if let Some(options) = &prop.logical_type_options {
            if let Some(pattern) = &options.pattern
                && let Err(e) = regex::Regex::new(pattern)
            {
                diagnostics.push(
                    Diagnostic::error(path, format!("invalid pattern: {e}"))
                        .field(format!("{field}.logicalTypeOptions.pattern"))
                        .at(line, None),
                );
            }
            if let Some(format) = &options.format
                && prop.logical_type == Some(LogicalType::String)
                && !matches!(
                    format.as_str(),
                    "email" | "uuid" | "uri" | "url" | "hostname" | "ipv4" | "ipv6"
                )
            {
                diagnostics.push(
                    Diagnostic::warning(
                        path,
                        format!("string format `{format}` is not checked by weir"),
                    )
                    .field(format!("{field}.logicalTypeOptions.format"))
                    .at(line, None),
                );
            }
        }
        for (q_idx, rule) in prop.quality.iter().enumerate() {
            let q_field = format!("{field}.quality[{q_idx}]");
            check_rule(
                path,
                text,
                rule,
                Some(&prop.name),
                &q_field,
                table,
                diagnostics,
            );
        }
    }
    for (q_idx, rule) in table.quality.iter().enumerate() {
        let q_field = format!("schema[0].quality[{q_idx}]");
        check_rule(path, text, rule, None, &q_field, table, diagnostics);
    }
}

fn check_rule(
    path: &Path,
    text: &str,
    rule: &QualityRule,
    column: Option<&str>,
    field: &str,
    table: &SchemaObject,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let line = rule.id.as_deref().and_then(|id| find_line(text, id));
    match rule.kind(column) {
        Ok(kind) => {
            let columns = match &kind {
                RuleKind::DuplicateValues { columns } => columns.clone(),
                _ => Vec::new(),
            };
            for c in columns {
                if !table.properties.iter().any(|p| p.name == c) {
                    diagnostics.push(
                        Diagnostic::error(path, format!("unknown property `{c}`"))
                            .field(format!("{field}.arguments.properties"))
                            .at(line, None),
                    );
                }
            }
            if let RuleKind::InvalidValues {
                pattern: Some(p), ..
            } = &kind
                && let Err(e) = regex::Regex::new(p)
            {
                diagnostics.push(
                    Diagnostic::error(path, format!("invalid pattern: {e}"))
                        .field(format!("{field}.arguments.pattern"))
                        .at(line, None),
                );
            }
        }
        Err(message) => diagnostics.push(
            Diagnostic::error(path, message)
                .field(field.to_string())
                .at(line, None),
        ),
    }
    match rule.operators().len() {
        1 => {}
        0 => diagnostics.push(
            Diagnostic::error(path, "a quality rule needs one operator (mustBe, mustBeLessThan, ...)")
                .field(field.to_string())
                .at(line, None),
        ),
        n => diagnostics.push(
            Diagnostic::error(
                path,
                format!("a quality rule takes exactly one operator (ODCS JSON schema `oneOf`), found {n}"),
            )
            .field(field.to_string())
            .at(line, None),
        ),
    }
}

impl QualityRule {
    /// Resolves what this rule measures. `column` is the property it sits under, if any.
    pub fn kind(&self, column: Option<&str>) -> Result<RuleKind, String> {
        let rule_type = self.rule_type.as_deref().unwrap_or("library");
        match rule_type {
            "sql" => {
                let query = self
                    .query
                    .clone()
                    .ok_or("a `type: sql` rule needs a `query`")?;
                Ok(RuleKind::Sql { query })
            }
            "library" => {
                let metric = self
                    .metric
                    .as_deref()
                    .or(self.rule.as_deref())
                    .map(v30_rule_as_metric)
                    .ok_or("a library rule needs a `metric`")?;
                let need_column = || {
                    column
                        .map(str::to_string)
                        .ok_or_else(|| format!("metric `{metric}` must sit under a property"))
                };
                match metric {
                    "nullValues" => Ok(RuleKind::NullValues {
                        column: need_column()?,
                    }),
                    "missingValues" => {
                        let missing = match self.argument("missingValues") {
                            Some(Value::Sequence(values)) => {
                                values.iter().map(value_as_string).collect()
                            }
                            Some(_) => {
                                return Err("`arguments.missingValues` must be a list".into());
                            }
                            None => vec![None, Some(String::new())],
                        };
                        Ok(RuleKind::MissingValues {
                            column: need_column()?,
                            missing,
                        })
                    }
                    "invalidValues" => {
                        let valid_values = match self.argument("validValues") {
                            Some(Value::Sequence(values)) => {
                                Some(values.iter().filter_map(value_as_string).collect())
                            }
                            Some(_) => return Err("`arguments.validValues` must be a list".into()),
                            None => self
                                .valid_values
                                .as_ref()
                                .map(|v| v.iter().filter_map(value_as_string).collect()),
                        };
                        let pattern = match self.argument("pattern") {
                            Some(Value::String(p)) => Some(p.clone()),
                            Some(_) => return Err("`arguments.pattern` must be a string".into()),
                            None => None,
                        };
                        if valid_values.is_none() && pattern.is_none() {
                            return Err("`invalidValues` needs `arguments.validValues` or `arguments.pattern`".into());
                        }
                        Ok(RuleKind::InvalidValues {
                            column: need_column()?,
                            valid_values,
                            pattern,
                        })
                    }
                    "duplicateValues" => {
                        let columns = match (self.argument("properties"), column) {
                            (Some(Value::Sequence(values)), _) => {
                                values.iter().filter_map(value_as_string).collect()
                            }
                            (Some(_), _) => {
                                return Err("`arguments.properties` must be a list".into());
                            }
                            (None, Some(c)) => vec![c.to_string()],
                            (None, None) => {
                                return Err(
                                    "a schema-level `duplicateValues` needs `arguments.properties`"
                                        .into(),
                                );
                            }
                        };
                        Ok(RuleKind::DuplicateValues { columns })
                    }
                    "rowCount" => Ok(RuleKind::RowCount),
                    other => Err(format!(
                        "unknown metric `{other}`; expected nullValues, missingValues, invalidValues, duplicateValues or rowCount"
                    )),
                }
            }
            other => Err(format!(
                "quality rule type `{other}` is not supported by weir (library, sql)"
            )),
        }
    }

    fn argument(&self, name: &str) -> Option<&Value> {
        self.arguments.as_ref().and_then(|a| a.get(name))
    }
}

/// ODCS v3.0 names its library rules `rule: nullCheck`, `duplicateCount`, `validValues`,
/// `rowCount`; v3.1 renamed them to `metric`s.
fn v30_rule_as_metric(rule: &str) -> &str {
    match rule {
        "nullCheck" => "nullValues",
        "duplicateCount" => "duplicateValues",
        "validValues" => "invalidValues",
        other => other,
    }
}

fn value_as_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        other => serde_yaml::to_string(other)
            .ok()
            .map(|s| s.trim().to_string()),
    }
}

/// A YAML syntax error, with the line and column serde_yaml gives.
fn yaml_error(path: &Path, err: &serde_yaml::Error) -> Diagnostic {
    let location = err.location();
    let message = strip_location(&err.to_string());
    Diagnostic::error(path, format!("not valid YAML: {message}")).at(
        location.as_ref().map(|l| l.line()),
        location.as_ref().map(|l| l.column()),
    )
}

/// Maps the forms ODCS v3.0 uses onto the v3.1 shape weir reads (the document is already valid
/// against its declared version's schema): `team` as a list of members becomes `team.members`.
/// v3.0 rule names are read by [`QualityRule::kind`].
fn older_forms_as_v31(mut document: Value) -> Value {
    if let Some(team) = document.get_mut("team")
        && team.is_sequence()
    {
        let members = std::mem::take(team);
        let mut mapping = serde_yaml::Mapping::new();
        mapping.insert(Value::String("members".into()), members);
        *team = Value::Mapping(mapping);
    }
    document
}

/// serde_yaml appends " at line L column C"; the diagnostic carries those separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

/// serde_yaml prefixes errors with the field path ("schema[0].properties[1]: ...").
fn split_field_path(message: &str) -> (Option<String>, String) {
    if let Some((head, rest)) = message.split_once(": ")
        && !head.contains(' ')
        && !head.is_empty()
    {
        return (Some(head.to_string()), rest.to_string());
    }
    (None, message.to_string())
}

/// First line (1-based) where `needle` appears as a YAML key or value: good enough to point a
/// user at a semantic error that serde cannot place.
fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "apiVersion: v3.1.0\nkind: DataContract\nid: c1\nversion: 1.0.0\nstatus: active\nschema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: integer\n";

    #[test]
    fn parses_minimal_contract() {
        let (c, d) = parse_contract(Path::new("c.yaml"), MINIMAL);
        let c = c.expect("parsed");
        assert_eq!(c.table().map(|t| t.name.as_str()), Some("t"));
        assert!(d.iter().all(|d| d.is_warning), "{d:?}");
    }

    #[test]
    fn unknown_key_names_line_and_field() {
        let text = MINIMAL.replace(
            "        logicalType: integer\n",
            "        logicalType: integer\n        colour: red\n",
        );
        let (c, d) = parse_contract(Path::new("c.yaml"), &text);
        assert!(c.is_none());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(11));
        assert!(
            d[0].message.contains("'colour' was unexpected"),
            "{}",
            d[0].message
        );
        assert_eq!(
            d[0].field.as_deref(),
            Some("schema[0].properties[0].colour")
        );
    }

    #[test]
    fn missing_required_field_is_an_error() {
        let text = MINIMAL.replace("id: c1\n", "");
        let (c, d) = parse_contract(Path::new("c.yaml"), &text);
        assert!(c.is_none());
        assert!(
            d[0].message.contains("\"id\" is a required property"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn wrong_type_is_an_error() {
        let text = MINIMAL.replace(
            "logicalType: integer",
            "logicalType: integer\n        required: maybe",
        );
        let (c, d) = parse_contract(Path::new("c.yaml"), &text);
        assert!(c.is_none());
        assert!(
            d[0].message
                .contains("\"maybe\" is not of type \"boolean\""),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].line, Some(11));
    }

    #[test]
    fn two_operators_are_rejected() {
        let text = format!(
            "{MINIMAL}        quality:\n          - id: q1\n            metric: nullValues\n            mustBe: 0\n            mustBeLessThan: 3\n"
        );
        let (_, d) = parse_contract(Path::new("c.yaml"), &text);
        assert!(
            d.iter()
                .any(|d| !d.is_warning && d.message.contains("exactly one operator")),
            "{d:?}"
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].line, Some(12));
        assert!(
            d[0].field.as_deref() == Some("schema[0].properties[0].quality[0]"),
            "{d:?}"
        );
    }

    #[test]
    fn operators_hold() {
        assert!(Operator::MustBeBetween(1.0, 3.0).holds(3.0));
        assert!(!Operator::MustNotBeBetween(1.0, 3.0).holds(1.0));
        assert!(Operator::MustBeLessThan(1.0).holds(0.5));
        assert!(!Operator::MustBeGreaterOrEqualTo(2.0).holds(1.0));
    }
}
