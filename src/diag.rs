//! Diagnostics: what is wrong, where (file:line:column), what was expected,
//! and what to do next. Rendered rustc-style with a source snippet and a
//! caret, or as JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::yaml::{Span, YamlError};

/// How bad a diagnostic is. Errors block apply; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the environment.
    Error,
    /// Reported, does not block.
    Warning,
}

/// One finding about one place in one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable code, e.g. `schema`, `yaml`, `policy`.
    pub code: String,
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// Where in the file; `None` when the finding is about the file as a whole.
    #[serde(skip)]
    pub span: Option<Span>,
    /// 1-based line (0 when unknown), for JSON output.
    pub line: usize,
    /// 1-based column (0 when unknown), for JSON output.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span` in `file`.
    pub fn error(code: &str, file: &Path, span: Option<Span>, message: impl Into<String>) -> Self {
        let (line, column) = span.map_or((0, 0), |s| (s.start.line, s.start.col));
        Diagnostic {
            severity: Severity::Error,
            code: code.to_string(),
            file: file.to_path_buf(),
            span,
            line,
            column,
            message: message.into(),
            help: None,
        }
    }

    /// A warning at `span` in `file`.
    pub fn warning(
        code: &str,
        file: &Path,
        span: Option<Span>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }

    /// Add a hint on what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A YAML parse error in `file`.
    pub fn from_yaml(file: &Path, e: YamlError) -> Self {
        let d = Diagnostic::error(
            "yaml",
            file,
            Some(e.span).filter(|s| s.start.line > 0),
            e.message,
        );
        match e.help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }

    /// `file:line:col` (or just `file`).
    pub fn location(&self) -> String {
        if self.line > 0 {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        } else {
            self.file.display().to_string()
        }
    }

    /// One line: `file:line:col: error[code]: message`.
    pub fn one_line(&self) -> String {
        format!(
            "{}: {}[{}]: {}",
            self.location(),
            self.severity_word(),
            self.code,
            self.message
        )
    }

    fn severity_word(&self) -> &'static str {
        match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// The texts of the files diagnostics point into, for snippets.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    texts: BTreeMap<PathBuf, String>,
}

impl Sources {
    /// Remember the text of `file`.
    pub fn add(&mut self, file: &Path, text: &str) {
        self.texts.insert(file.to_path_buf(), text.to_string());
    }

    /// The text of `file`, if known.
    pub fn get(&self, file: &Path) -> Option<&str> {
        self.texts.get(file).map(String::as_str)
    }
}

/// Render diagnostics rustc-style. `color` adds ANSI colours.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        render_one(&mut out, d, sources, color);
        out.push('\n');
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if !diags.is_empty() {
        let _ = writeln!(
            out,
            "{} error{}, {} warning{}",
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" }
        );
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, sources: &Sources, color: bool) {
    let (sev_on, bold, blue, off) = if color {
        let sev = match d.severity {
            Severity::Error => "\x1b[1;31m",
            Severity::Warning => "\x1b[1;33m",
        };
        (sev, "\x1b[1m", "\x1b[1;34m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let _ = writeln!(
        out,
        "{sev_on}{}[{}]{off}{bold}: {}{off}",
        d.severity_word(),
        d.code,
        d.message
    );
    let _ = writeln!(out, "  {blue}-->{off} {}", d.location());
    if let (Some(span), Some(text)) = (d.span, sources.get(&d.file))
        && let Some(line_text) = text.lines().nth(span.start.line.saturating_sub(1))
    {
        let gutter = span.start.line.to_string().len();
        let pad = " ".repeat(gutter);
        let width = if span.end.line == span.start.line && span.end.col > span.start.col {
            span.end.col - span.start.col
        } else {
            1
        };
        let _ = writeln!(out, "{pad} {blue}|{off}");
        let _ = writeln!(
            out,
            "{blue}{}{off} {blue}|{off} {line_text}",
            span.start.line
        );
        let indent: String = line_text
            .chars()
            .take(span.start.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(
            out,
            "{pad} {blue}|{off} {indent}{sev_on}{}{off}",
            "^".repeat(width.min(80))
        );
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "  {blue}={off} {bold}help{off}: {help}");
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a
/// plausible typo ("did you mean").
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two neighbouring letters (`jmv` for `jvm`,
/// `prdo` for `prod`) is one edit, as it is one slip of the fingers
/// (optimal string alignment distance).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    #[test]
    fn renders_snippet_with_caret_under_the_span() {
        let mut sources = Sources::default();
        let file = Path::new("environments/dev/environment.yaml");
        sources.add(file, "spec:\n  replica: 3\n");
        let span = Span {
            start: Pos {
                line: 2,
                col: 3,
                offset: 8,
            },
            end: Pos {
                line: 2,
                col: 10,
                offset: 15,
            },
        };
        let d = Diagnostic::error("schema", file, Some(span), "unknown field `replica`")
            .with_help("did you mean `replicas`?");
        let text = render(&[d], &sources, false);
        assert!(
            text.contains("--> environments/dev/environment.yaml:2:3"),
            "{text}"
        );
        assert!(text.contains("2 |   replica: 3\n  |   ^^^^^^^\n"), "{text}");
        assert!(text.contains("help: did you mean `replicas`?"), "{text}");
        assert!(text.ends_with("1 error, 0 warnings\n"), "{text}");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("replica", ["replicas", "memory"]),
            Some("replicas")
        );
        assert_eq!(
            did_you_mean("memroy", ["replicas", "memory"]),
            Some("memory")
        );
        assert_eq!(did_you_mean("zzz", ["replicas", "memory"]), None);
        assert_eq!(did_you_mean("jmv", ["jvm", "node", "go"]), Some("jvm"));
        assert_eq!(did_you_mean("prdo", ["dev", "prod"]), Some("prod"));
    }
}
