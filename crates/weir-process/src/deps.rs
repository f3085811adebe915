use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;

/// SQL that does not parse, or is not one query, with where it went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// The tables a model reads, in order of first appearance, without CTE names; the asset graph
/// is built from these, so models need no `ref()` boilerplate.
pub fn table_references(sql: &str) -> Result<Vec<String>, SqlError> {
    table_references_with(sql, |t| t.table().to_string())
}

/// Like [`table_references`], but each name keeps its schema when the SQL gives one
/// (`quarantine.orders`), for `weir query`, where a schema picks another kind of table.
pub fn qualified_table_references(sql: &str) -> Result<Vec<String>, SqlError> {
    table_references_with(sql, |t| match t.schema() {
        Some(schema) => format!("{schema}.{}", t.table()),
        None => t.table().to_string(),
    })
}

fn table_references_with(
    sql: &str,
    name_of: impl Fn(&datafusion::common::TableReference) -> String,
) -> Result<Vec<String>, SqlError> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| {
        let mut error = parse_error(&e.to_string());
        if error.line.is_none() && error.message.contains("EOF") {
            error.line = Some(sql.trim_end().lines().count().max(1));
        }
        error
    })?;
    let statement = match (statements.pop_front(), statements.is_empty()) {
        (Some(s), true) => s,
        (None, _) => {
            return Err(SqlError {
                line: None,
                column: None,
                message: "the model has no query".into(),
            });
        }
        (Some(_), false) => {
            return Err(SqlError {
                line: None,
                column: None,
                message: "a model is exactly one SELECT statement".into(),
            });
        }
    };
    if !is_query(&statement) {
        return Err(SqlError {
            line: None,
            column: None,
            message: "a model is one SELECT query (no DDL or DML)".into(),
        });
    }
    let (tables, _ctes) =
        resolve_table_references(&statement, true).map_err(|e| parse_error(&e.to_string()))?;
    let mut names: Vec<String> = Vec::new();
    for t in tables {
        let name = name_of(&t);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort_by_key(|n| {
        let last = n.rsplit('.').next().unwrap_or(n);
        find_word(sql, n)
            .or_else(|| find_word(sql, last))
            .unwrap_or((usize::MAX, 0))
    });
    Ok(names)
}

fn is_query(statement: &Statement) -> bool {
    matches!(statement, Statement::Statement(s) if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)))
}

/// sqlparser reports positions as "at Line: L, Column: C".
fn parse_error(message: &str) -> SqlError {
    let grab = |key: &str| {
        message.find(key).and_then(|i| {
            let rest = &message[i + key.len()..];
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
    };
    SqlError {
        line: grab("Line: "),
        column: grab("Column: "),
        message: message.to_string(),
    }
}

/// 1-based (line, column) of `word` as a whole word, case-insensitively.
pub fn find_word(sql: &str, word: &str) -> Option<(usize, usize)> {
    let lower = sql.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after_ok = end >= bytes.len() || !is_ident(bytes[end]);
        let in_comment = lower[..start]
            .rsplit('\n')
            .next()
            .is_some_and(|l| l.contains("--"));
        if before_ok && after_ok && !in_comment {
            let line = lower[..start].matches('\n').count() + 1;
            let column = start - lower[..start].rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            return Some((line, column));
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tables_not_ctes() {
        let sql = "-- weir: materialized = table\nWITH recent AS (SELECT * FROM orders)\nSELECT * FROM recent JOIN customers USING (customer_id)";
        assert_eq!(
            table_references(sql).expect("parses"),
            vec!["orders", "customers"]
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = table_references("SELECT *\nFROM orders WHERE AND x = 1").expect_err("fails");
        assert_eq!(e.line, Some(2), "{e:?}");
        let e = table_references("SELECT *\nFROM orders\nWHERE").expect_err("fails");
        assert_eq!(
            e.line,
            Some(3),
            "an error at the end points at the last line: {e:?}"
        );
    }

    #[test]
    fn only_queries() {
        assert!(table_references("DROP TABLE orders").is_err());
        assert!(table_references("SELECT 1; SELECT 2").is_err());
    }

    #[test]
    fn words_are_located() {
        assert_eq!(
            find_word("-- orders\nSELECT * FROM orders_x, orders", "orders"),
            Some((2, 25))
        );
    }
}
