//! The text plan of `keelson reconcile`, for a terminal or a CI log.
//!
//! Laid out to be scanned, as `terraform plan` is: a header per environment,
//! a blank line and a coloured header per object, diffs indented under their
//! object, create diffs collapsed to their header (`--show-creates` shows
//! them), a summary line per environment and one total line at the end.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::outcome::Outcomes;
use crate::plan::{Action, Change, ObjectId};
use crate::reconcile::EnvResult;

/// How to print the text plan.
#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// ANSI colours.
    pub color: bool,
    /// Print the whole object under each create, not only its header.
    pub show_creates: bool,
    /// A dry run (counts are "to create"), or an apply (counts are "created").
    pub dry_run: bool,
    /// What the plan compares with, when not the live clusters (`the base
    /// commit 1a2b3c…`), said once at the top.
    pub against: Option<String>,
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";

struct Paint(bool);

impl Paint {
    fn paint(&self, style: &str, text: &str) -> String {
        if self.0 {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

/// `+ create`, its colour.
fn action_word(a: Action) -> (&'static str, &'static str, &'static str) {
    match a {
        Action::Create => ("+", "create", GREEN),
        Action::Update => ("~", "update", YELLOW),
        Action::Replace => ("-/+", "replace", RED),
        Action::Delete => ("-", "delete", RED),
        Action::Unchanged => ("=", "unchanged", DIM),
        Action::Skip => ("!", "skip", CYAN),
    }
}

fn diff_lines(out: &mut String, diff: &str, p: &Paint) {
    for l in diff.lines() {
        let styled = if l.starts_with("+++") || l.starts_with("---") {
            p.paint(BOLD, l)
        } else if l.starts_with('+') {
            p.paint(GREEN, l)
        } else if l.starts_with('-') {
            p.paint(RED, l)
        } else if l.starts_with("@@") {
            p.paint(CYAN, l)
        } else {
            l.to_string()
        };
        let _ = writeln!(out, "    {styled}");
    }
}

fn change(out: &mut String, c: &Change, failed: Option<&str>, opts: &TextOptions, p: &Paint) {
    let (sign, word, colour) = action_word(c.action);
    // The object's own lines: a diff's `---`/`+++`/`@@` headers are not.
    let lines = c
        .diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .count();
    // A create's diff is the whole object and a deletion's is the whole live
    // object: the header says enough unless asked (markdown and JSON carry them).
    let show_diff = match c.action {
        Action::Create => opts.show_creates,
        Action::Delete => false,
        _ => true,
    };
    out.push('\n');
    let head = p.paint(
        &format!("{BOLD}{colour}"),
        &format!("{sign} {word} {}", c.id),
    );
    if c.action == Action::Create && !show_diff && lines > 0 {
        let _ = writeln!(out, "{head} {}", p.paint(DIM, &format!("({lines} lines)")));
    } else {
        let _ = writeln!(out, "{head}");
    }
    // A server's message may span lines (a claim's spec, listed field by
    // field): every line stays under its object.
    for n in &c.notes {
        for (i, l) in n.lines().enumerate() {
            let lead = if i == 0 { "note: " } else { "  " };
            let _ = writeln!(out, "    {lead}{l}");
        }
    }
    // After an apply, a write that failed says so under its object.
    if let Some(e) = failed {
        for (i, l) in e.lines().enumerate() {
            let l = if i == 0 {
                format!("failed: {l}")
            } else {
                l.to_string()
            };
            let _ = writeln!(out, "    {}", p.paint(RED, &l));
        }
    }
    if show_diff && !c.diff.is_empty() {
        diff_lines(out, &c.diff, p);
    }
}

fn environment(out: &mut String, r: &EnvResult, opts: &TextOptions, p: &Paint) {
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            BOLD,
            &format!(
                "== {} (cluster {}, namespace {})",
                r.environment, r.cluster, r.namespace
            )
        )
    );
    if let Some(rr) = &r.rancher {
        out.push('\n');
        out.push_str(&rr.text);
        if let Some(e) = &rr.error {
            let _ = writeln!(out, "{}", p.paint(RED, &format!("Rancher error: {e}")));
        }
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "\n{}", p.paint(RED, &format!("error: {e}")));
    }
    let Some(plan) = &r.plan else { return };
    // A retirement or a namespace move is named as one entry.
    if let Some(l) = &plan.lifecycle {
        let _ = writeln!(out, "\n{}", p.paint(BOLD, &l.to_string()));
    }
    let failures: HashMap<&ObjectId, &str> = r
        .apply
        .iter()
        .flat_map(|a| &a.results)
        .filter_map(|res| Some((&res.id, res.error.as_deref()?)))
        .collect();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged || !c.notes.is_empty())
    {
        change(out, c, failures.get(&c.id).copied(), opts, p);
    }
    if let Some(reason) = &plan.refused {
        let _ = writeln!(out, "\n{}", p.paint(RED, &format!("REFUSED: {reason}")));
    }
    if let Some(a) = &r.apply {
        if !failures.is_empty() {
            let _ = writeln!(
                out,
                "\n{}",
                p.paint(
                    RED,
                    &format!(
                        "apply failed: {} write(s) failed or were not attempted (see above)",
                        failures.len()
                    )
                )
            );
        }
        for h in &a.health {
            let line = format!("health {}: {}: {}", h.id, h.health, h.reason);
            let _ = writeln!(
                out,
                "{}",
                if h.is_ok() { line } else { p.paint(RED, &line) }
            );
        }
    }
}

/// The whole text plan.
pub fn render(results: &[EnvResult], blocked: &[String], opts: &TextOptions) -> String {
    let p = Paint(opts.color);
    let outcomes = Outcomes::of(results, blocked, opts.dry_run);
    let mut out = String::new();
    if let Some(a) = &opts.against {
        let _ = writeln!(out, "Planned against {a}.\n");
    }
    for (r, line) in results.iter().zip(&outcomes.envs) {
        environment(&mut out, r, opts, &p);
        let _ = writeln!(out, "\n{}\n", p.paint(BOLD, &line.line()));
    }
    for line in &outcomes.envs[results.len()..] {
        let _ = writeln!(out, "{}\n", p.paint(RED, &line.line()));
    }
    let hidden = !opts.show_creates
        && results
            .iter()
            .filter_map(|r| r.plan.as_ref())
            .flat_map(|p| &p.changes)
            .any(|c| c.action == Action::Create && !c.diff.is_empty());
    let _ = writeln!(out, "{}", p.paint(BOLD, &outcomes.total_line()));
    if hidden {
        let _ = writeln!(
            out,
            "{}",
            p.paint(
                DIM,
                "Creates are shown as one line each: --show-creates prints their objects."
            )
        );
    }
    out
}
