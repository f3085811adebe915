//! A first contract, written as text: what `weir contract infer`, `weir new source` and `weir
//! new model` produce. The YAML is valid ODCS v3.1.0 as it stands (weir and datacontract-cli
//! accept it); what a sample only suggests is written as comments for a person to keep or drop.

use arrow::datatypes::DataType;

/// The ODCS version weir writes.
pub const WRITTEN_API_VERSION: &str = "v3.1.0";

/// One column of a draft.
#[derive(Debug, Clone, Default)]
pub struct DraftColumn {
    pub name: String,
    pub logical_type: &'static str,
    pub required: bool,
    pub primary_key: bool,
    /// Comment lines written above the column (what the sample showed).
    pub notes: Vec<String>,
    /// YAML lines, relative to the column's keys, written commented out.
    pub suggestions: Vec<String>,
}

/// A contract to write.
#[derive(Debug, Clone, Default)]
pub struct ContractDraft {
    pub asset: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    /// Comment lines at the top of the file.
    pub header: Vec<String>,
    pub columns: Vec<DraftColumn>,
}

/// The ODCS `logicalType` weir would store an Arrow type as (the inverse of `arrow_type` for
/// the types a file can hold).
pub fn logical_type_of(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "integer",
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "number",
        DataType::Boolean => "boolean",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(..) => "timestamp",
        DataType::Time32(..) | DataType::Time64(..) => "time",
        DataType::List(..) | DataType::LargeList(..) | DataType::FixedSizeList(..) => "array",
        DataType::Struct(..) | DataType::Map(..) => "object",
        _ => "string",
    }
}

/// `text` as a YAML scalar that reads back as the same string.
pub fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/'))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
        )
        && text.parse::<f64>().is_err()
        && !text.starts_with(['-', '.']);
    if plain {
        text.to_string()
    } else {
        serde_json::Value::String(text.to_string()).to_string()
    }
}

/// An asset name (lowercase letters, digits, `_`, starting with a letter) made from `text`.
pub fn asset_name_from(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("__") {
        name = name.replace("__", "_");
    }
    let name = name.trim_matches('_').to_string();
    match name.chars().next() {
        Some(c) if c.is_ascii_lowercase() => name,
        Some(_) => format!("t_{name}"),
        None => "asset".into(),
    }
}

impl ContractDraft {
    /// The contract as ODCS YAML.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            out.push_str(&format!("# {line}\n"));
        }
        let asset = yaml_scalar(&self.asset);
        out.push_str(&format!(
            "apiVersion: {WRITTEN_API_VERSION}\nkind: DataContract\nid: {asset}\nversion: 1.0.0\nstatus: draft\n"
        ));
        if let Some(description) = &self.description {
            out.push_str(&format!(
                "description:\n  purpose: {}\n",
                yaml_scalar(description)
            ));
        }
        match &self.owner {
            Some(owner) => out.push_str(&format!(
                "team:\n  members:\n    - username: {}\n      role: owner\n",
                yaml_scalar(owner)
            )),
            None => out.push_str(
                "# team:   (who is alerted when this asset breaks; weir warns until one is set)\n#   members:\n#     - username: me@example.com\n#       role: owner\n",
            ),
        }
        out.push_str(&format!("schema:\n  - name: {asset}\n    properties:\n"));
        for column in &self.columns {
            for note in &column.notes {
                out.push_str(&format!("      # {note}\n"));
            }
            out.push_str(&format!(
                "      - name: {}\n        logicalType: {}\n",
                yaml_scalar(&column.name),
                column.logical_type
            ));
            if column.required {
                out.push_str("        required: true\n");
            }
            if column.primary_key {
                out.push_str("        primaryKey: true\n");
            }
            for line in &column.suggestions {
                out.push_str(&format!("        # {line}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_is_a_contract_weir_accepts() {
        let draft = ContractDraft {
            asset: "orders".into(),
            description: Some("Orders: from a sample".into()),
            owner: Some("ana@example.com".into()),
            header: vec!["written by weir".into()],
            columns: vec![
                DraftColumn {
                    name: "order_id".into(),
                    logical_type: "integer",
                    required: true,
                    primary_key: true,
                    notes: vec!["unique in the sample".into()],
                    suggestions: vec![],
                },
                DraftColumn {
                    name: "yes".into(),
                    logical_type: "string",
                    suggestions: vec!["quality:".into(), "  - metric: nullValues".into()],
                    ..Default::default()
                },
            ],
        };
        let text = draft.render();
        let (contract, diagnostics) =
            crate::parse_contract(std::path::Path::new("orders.odcs.yaml"), &text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}\n{text}");
        let contract = contract.expect("parsed");
        let table = contract.table().expect("table");
        assert_eq!(table.properties[1].name, "yes");
        assert!(table.properties[0].primary_key);
        assert_eq!(contract.owners(), vec!["ana@example.com".to_string()]);
    }

    #[test]
    fn names_and_scalars() {
        assert_eq!(asset_name_from("Orders 2024.csv"), "orders_2024_csv");
        assert_eq!(asset_name_from("2024-orders"), "t_2024_orders");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar("12"), "\"12\"");
        assert_eq!(yaml_scalar("a b: c"), "\"a b: c\"");
        assert_eq!(yaml_scalar("ana@example.com"), "ana@example.com");
    }
}
