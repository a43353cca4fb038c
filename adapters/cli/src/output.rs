//! Printing results: the server's JSON as is with `--json` (for scripts),
//! otherwise short lines and aligned tables for people.

use serde_json::Value;

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or what `human` makes of it.
    pub fn print(self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            let text = human(value);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// For commands with no result body: a JSON object or a sentence.
    pub fn done(self, json: Value, sentence: &str) {
        self.print(&json, |_| sentence.to_owned());
    }
}

/// A field of a JSON object as text (`-` when absent or null).
pub fn field(value: &Value, name: &str) -> String {
    match value.get(name) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| item.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// An aligned table of `columns` (header, JSON field) over `rows`, or
/// `empty` when there are none.
pub fn table(rows: &[Value], columns: &[(&str, &str)], empty: &str) -> String {
    if rows.is_empty() {
        return empty.to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|(_, name)| field(row, name)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (header, _))| {
            cells
                .iter()
                .map(|row| row[index].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut lines = vec![line(columns.iter().map(|(header, _)| *header).collect())];
    lines.extend(
        cells
            .iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// The array in `value`, or under `key` when `value` is a page object.
pub fn rows<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .as_array()
        .or_else(|| value.get(key).and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
