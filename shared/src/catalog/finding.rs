//! Findings: problems found in a catalog, each with a location an author can go to.

use serde::Serialize;

use super::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: where it is (file, line, column, JSON pointer), how bad, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Path relative to the catalog root, with `/` separators.
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// JSON pointer of the offending node within its document ("" for the whole file).
    pub pointer: String,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(
        file: &str,
        pos: Pos,
        pointer: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            file: file.to_owned(),
            line: pos.line.max(1) as usize,
            column: pos.column.max(1) as usize,
            pointer: pointer.into(),
            severity,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// ` (did you mean `x`?)` when one of `candidates` is close to `word`, else "".
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Sorts findings by file, position and message, and drops exact repeats.
pub fn normalize(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.pointer, &a.message)
            .cmp(&(&b.file, b.line, b.column, &b.pointer, &b.message))
    });
    findings.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_offered_only_for_close_words() {
        assert_eq!(
            did_you_mean("nmae", ["name", "title"]),
            " (did you mean `name`?)"
        );
        assert_eq!(did_you_mean("zzz", ["name", "title"]), "");
    }
}
