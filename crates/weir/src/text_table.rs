//! Summary tables laid out for the reader's terminal.
//!
//! comfy-table wraps cells to the terminal width, but splits a word that does not fit its
//! column. A split identifier (`orders_by_cust` / `omer`) reads as two names, so weir gives
//! every column at least the width of its longest word and wraps at spaces only. When even
//! that does not fit, columns of long words (identifiers, paths, messages) give up width down to
//! [`SHORT_WORD`] and their longer words are shortened with `…`, whole (the full values are in
//! `--json`). A terminal too narrow even for that gets one block per row, `column  value` per
//! line, as `psql`'s expanded display does, rather than a table of clipped stubs.

use std::fmt;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width};

/// The narrowest a column of long words is squeezed to before the table turns into blocks.
const SHORT_WORD: usize = 12;

pub struct TextTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    pub fn new(header: &[&str]) -> Self {
        TextTable {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn add_row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table at `width` columns (None: as wide as its content, for pipes and files).
    pub fn render(&self, width: Option<usize>) -> String {
        let Some(width) = width else {
            return self.comfy(None, &vec![usize::MAX; self.header.len()]);
        };
        match column_caps(&self.longest_words(), width) {
            Some(caps) => self.comfy(Some(width), &caps),
            None => self.blocks(width),
        }
    }

    /// One block per row: the first cell as its title, then each other column on its own line,
    /// values wrapped at spaces under themselves.
    fn blocks(&self, width: usize) -> String {
        let label_width = self.header.iter().skip(1).map(|h| display_width(h)).max();
        let label_width = label_width.unwrap_or(0);
        let indent = 2 + label_width + 2;
        let value_width = width.saturating_sub(indent).max(SHORT_WORD);
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let title = row.first().map(String::as_str).unwrap_or("");
            out.push_str(&shorten_words(title, width));
            out.push('\n');
            for (label, value) in self.header.iter().zip(row).skip(1) {
                let lines = wrap_words(&shorten_words(value, value_width), value_width);
                for (j, line) in lines.iter().enumerate() {
                    let label = if j == 0 { label.as_str() } else { "" };
                    out.push_str(&format!("  {label:<label_width$}  {line}\n"));
                }
            }
        }
        out
    }

    fn longest_words(&self) -> Vec<usize> {
        (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header[c])
                    .chain(self.rows.iter().filter_map(|r| r.get(c)))
                    .flat_map(|cell| cell.split_whitespace())
                    .map(display_width)
                    .max()
                    .unwrap_or(1)
            })
            .collect()
    }

    fn comfy(&self, width: Option<usize>, caps: &[usize]) -> String {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
        let header: Vec<String> = self
            .header
            .iter()
            .zip(caps)
            .map(|(h, cap)| shorten_words(h, *cap))
            .collect();
        table.set_header(header);
        for row in &self.rows {
            table.add_row(
                row.iter()
                    .zip(caps)
                    .map(|(cell, cap)| shorten_words(cell, *cap))
                    .collect::<Vec<_>>(),
            );
        }
        match width {
            Some(width) => {
                table.set_width(u16::try_from(width).unwrap_or(u16::MAX));
                // comfy-table's fixed widths include the cell's padding (one space each side).
                table.set_constraints(caps.iter().map(|cap| {
                    ColumnConstraint::LowerBoundary(Width::Fixed(
                        u16::try_from(cap + 2).unwrap_or(u16::MAX),
                    ))
                }));
            }
            None => {
                table.force_no_tty();
            }
        }
        table.to_string()
    }
}

impl fmt::Display for TextTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(terminal_width()))
    }
}

/// The width to lay tables out for: `COLUMNS` when set (as GNU tools read it), else the
/// terminal's when stdout is one, else none.
pub fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    Table::new().width().map(usize::from)
}

/// Each column's width budget: its longest word when everything fits; otherwise the widest
/// columns are narrowed first, one character at a time, down to [`SHORT_WORD`]. None when the
/// table does not fit even so.
fn column_caps(longest: &[usize], width: usize) -> Option<Vec<usize>> {
    // UTF8_BORDERS_ONLY: a border on each side, one space of padding on each side of a cell,
    // and a blank column separator between cells.
    let overhead = 1 + 3 * longest.len();
    let available = width.saturating_sub(overhead);
    let mut caps = longest.to_vec();
    while caps.iter().sum::<usize>() > available {
        let (i, widest) = caps
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(_, w)| *w)
            .filter(|(_, w)| *w > SHORT_WORD)?;
        caps[i] = widest - 1;
    }
    Some(caps)
}

/// `text` in lines of at most `width` characters, broken at spaces only (a longer word, which
/// [`shorten_words`] has already cut, stands alone on its line).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && display_width(&line) + 1 + display_width(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// `text` with each word longer than `cap` cut to `cap` characters, the last being `…`.
fn shorten_words(text: &str, cap: usize) -> String {
    if text.split_whitespace().all(|w| display_width(w) <= cap) {
        return text.to_string();
    }
    text.split_whitespace()
        .map(|w| {
            if display_width(w) <= cap {
                w.to_string()
            } else {
                let kept: String = w.chars().take(cap.saturating_sub(1)).collect();
                format!("{kept}…")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn display_width(word: &str) -> usize {
    word.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TextTable {
        let mut t = TextTable::new(&["asset", "status", "error"]);
        t.add_row(vec![
            "orders_by_customer".into(),
            "failed".into(),
            "the contract of `orders_by_customer` requires column customer_id, which the query does not produce".into(),
        ]);
        t.add_row(vec!["raw_orders".into(), "succeeded".into(), String::new()]);
        t
    }

    fn words_of(t: &TextTable) -> Vec<String> {
        t.rows
            .iter()
            .flatten()
            .chain(&t.header)
            .flat_map(|c| c.split_whitespace().map(String::from))
            .collect()
    }

    /// The words printed, without the table's box drawing.
    fn tokens(out: &str) -> Vec<&str> {
        out.split(|c: char| c.is_whitespace() || ('\u{2500}'..='\u{257f}').contains(&c))
            .filter(|w| !w.is_empty())
            .collect()
    }

    #[test]
    fn fits_the_width_and_wraps_only_between_words() {
        let t = sample();
        for width in [60, 80, 100] {
            let out = t.render(Some(width));
            for line in out.lines() {
                assert!(line.chars().count() <= width, "{width}: {line:?}\n{out}");
            }
            let printed = tokens(&out);
            for word in words_of(&t) {
                assert!(
                    printed.contains(&word.as_str()),
                    "{width}: {word:?} split\n{out}"
                );
            }
        }
    }

    #[test]
    fn too_narrow_shortens_whole_words_instead_of_splitting_them() {
        let t = sample();
        let out = t.render(Some(40));
        for line in out.lines() {
            assert!(line.chars().count() <= 40, "{line:?}\n{out}");
        }
        // Every printed token is a whole word of the table or a shortened one ending in `…`.
        let words = words_of(&t);
        for token in tokens(&out) {
            let whole = words.iter().any(|w| w == token);
            let shortened = token.strip_suffix('…').is_some_and(|stem| {
                words
                    .iter()
                    .any(|w| w.starts_with(stem) && w.len() > stem.len())
            });
            assert!(whole || shortened, "{token:?}\n{out}");
        }
    }

    #[test]
    fn a_terminal_too_narrow_for_columns_gets_one_block_per_row() {
        let t = sample();
        let out = t.render(Some(30));
        for line in out.lines() {
            assert!(line.chars().count() <= 30, "{line:?}\n{out}");
        }
        assert!(
            out.starts_with("orders_by_customer\n  status  failed\n"),
            "{out}"
        );
        assert!(out.contains("\nraw_orders\n  status  succeeded\n"), "{out}");
        let printed: Vec<&str> = out.split_whitespace().collect();
        for word in ["`orders_by_customer`", "customer_id,", "produce"] {
            assert!(printed.contains(&word), "{word:?} split\n{out}");
        }
    }

    #[test]
    fn without_a_width_nothing_wraps() {
        let out = sample().render(None);
        assert!(out.lines().any(|l| l.contains(
            "the contract of `orders_by_customer` requires column customer_id, which the query does not produce"
        )));
    }
}
