//! The markdown plan of `keelson reconcile`: one merge-request comment.
//!
//! One overall summary at the top (a line and a table), then one collapsible
//! section per environment holding everything of that environment (its
//! Rancher changes, its errors, one collapsible entry per object). The whole
//! comment stays within a size limit (GitHub refuses comments over 65,536
//! characters): when the plan is longer, diffs and then entries are left out
//! from the end, and a note says so and where the full plan is.

use std::fmt::Write as _;

use super::outcome::{EnvLine, EnvOutcome, Outcomes};
use crate::plan::{Action, Change};
use crate::reconcile::EnvResult;

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// The default limit of `--output markdown`: GitHub's, less room for the
/// hidden marker and header a posting script adds.
pub const DEFAULT_LIMIT: usize = 65_000;

/// How to print the markdown plan.
#[derive(Debug, Clone, Default)]
pub struct MarkdownOptions {
    /// A dry run, or an apply.
    pub dry_run: bool,
    /// At most this many bytes (so at most this many characters).
    pub limit: usize,
    /// Where the full plan is (a CI job's log or artifact), for the note
    /// printed when the plan is cut.
    pub full_plan_url: Option<String>,
    /// What the plan compares with, when not the live clusters.
    pub against: Option<String>,
}

fn sign(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("+", "create"),
        Action::Update => ("~", "update"),
        Action::Replace => ("-/+", "replace"),
        Action::Delete => ("-", "delete"),
        Action::Unchanged => ("=", "unchanged"),
        Action::Skip => ("!", "skip"),
    }
}

/// One object: its entry with the diff, and the shorter form without it.
struct Entry {
    full: String,
    short: String,
}

fn entry(c: &Change) -> Entry {
    let (s, word) = sign(c.action);
    let title = format!("<code>{s} {word} {}</code>", c.id);
    let notes: String = c.notes.iter().map(|n| format!("- {n}\n")).collect();
    let mut full = format!("<details><summary>{title}</summary>\n\n{notes}");
    if !c.diff.is_empty() {
        let _ = write!(
            full,
            "\n```diff\n{}```\n",
            c.diff.replace("```", "`\u{200b}``")
        );
    }
    full.push_str("\n</details>\n\n");
    let short = if c.diff.is_empty() {
        full.clone()
    } else {
        format!("- {title} (diff left out: the comment would be too long)\n\n")
    };
    Entry { full, short }
}

/// One environment: what always shows, and its entries.
struct Section {
    open: String,
    entries: Vec<Entry>,
    close: String,
}

fn status_cell(line: &EnvLine) -> &'static str {
    match &line.outcome {
        EnvOutcome::Refused { .. } => "❌ refused",
        EnvOutcome::Failed => "❌ failed",
        EnvOutcome::Blocked => "❌ spec errors",
        _ if line.failed => "❌ errors",
        EnvOutcome::Planned { counts, .. } | EnvOutcome::Applied { counts, .. }
            if counts.is_zero() =>
        {
            "no changes"
        }
        _ => "changes",
    }
}

fn head(outcomes: &Outcomes, against: Option<&str>) -> String {
    let title = if outcomes.dry_run {
        "keelson plan"
    } else {
        "keelson apply"
    };
    let mut out = format!("## {title}\n\n**{}**\n\n", outcomes.total_line());
    if let Some(a) = against {
        let _ = writeln!(out, "Planned against {}.\n", a.replace('|', "\\|"));
    }
    // The replace column shows only where something is replaced.
    let replaces = outcomes.envs.iter().any(|e| match &e.outcome {
        EnvOutcome::Planned { counts, .. } | EnvOutcome::Applied { counts, .. } => {
            counts.replace > 0
        }
        EnvOutcome::Refused { planned } => planned.replace > 0,
        EnvOutcome::Failed | EnvOutcome::Blocked => false,
    });
    out.push_str(if replaces {
        "| environment | create | update | replace | delete | |\n| --- | ---: | ---: | ---: | ---: | --- |\n"
    } else {
        "| environment | create | update | delete | |\n| --- | ---: | ---: | ---: | --- |\n"
    });
    for e in &outcomes.envs {
        let cells: Vec<String> = match &e.outcome {
            EnvOutcome::Planned { counts, .. } | EnvOutcome::Applied { counts, .. } => {
                vec![counts.create, counts.update, counts.replace, counts.delete]
                    .into_iter()
                    .map(|n| n.to_string())
                    .collect()
            }
            EnvOutcome::Refused { planned } => vec![
                planned.create,
                planned.update,
                planned.replace,
                planned.delete,
            ]
            .into_iter()
            .map(|n| format!("~~{n}~~"))
            .collect(),
            EnvOutcome::Failed | EnvOutcome::Blocked => vec!["–".into(); 4],
        };
        let mut row = format!("| `{}` |", e.name);
        for (i, cell) in cells.iter().enumerate() {
            if i != 2 || replaces {
                let _ = write!(row, " {cell} |");
            }
        }
        let _ = writeln!(out, "{row} {} |", status_cell(e));
    }
    out.push('\n');
    out
}

fn section(r: &EnvResult, line: &EnvLine) -> Section {
    // Sections that need a reader's attention start open.
    let mut open = format!(
        "<details{}>\n<summary><b>{}</b>: {}</summary>\n\n",
        if line.failed { " open" } else { "" },
        r.environment,
        line.line()
            .strip_prefix(&format!("{}: ", r.environment))
            .unwrap_or_default()
    );
    let _ = writeln!(
        open,
        "### {}\n\nCluster `{}`, namespace `{}`.\n",
        r.environment, r.cluster, r.namespace
    );
    if let Some(rr) = &r.rancher {
        open.push_str(&rr.markdown);
        if let Some(e) = &rr.error {
            let _ = writeln!(open, "\n> **Rancher error:** {e}");
        }
        open.push('\n');
    }
    if let Some(e) = &r.error {
        let _ = writeln!(open, "**Error:**\n\n```\n{e}\n```\n");
    }
    let mut entries = Vec::new();
    if let Some(plan) = &r.plan {
        // A retirement or a namespace move is named as one entry.
        if let Some(l) = &plan.lifecycle {
            let _ = writeln!(open, "**{l}**\n");
        }
        if let Some(reason) = &plan.refused {
            let _ = writeln!(open, "> **Refused:** {reason}\n");
        }
        if let Some(f) = r.apply.as_ref().and_then(|a| a.failure_summary()) {
            let _ = writeln!(open, "> **Apply failed:** {f}\n");
        }
        entries = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .map(entry)
            .collect();
        if entries.is_empty() && plan.refused.is_none() {
            open.push_str("No changes.\n\n");
        }
    }
    Section {
        open,
        entries,
        close: "</details>\n\n".into(),
    }
}

fn blocked_section(name: &str) -> Section {
    Section {
        open: format!(
            "<details open>\n<summary><b>{name}</b>: not planned</summary>\n\n### {name}\n\n\
             Not planned: the spec has errors (run `keelson validate`).\n\n"
        ),
        entries: Vec::new(),
        close: "</details>\n\n".into(),
    }
}

fn omitted_line(n: usize) -> String {
    format!("_… and {n} more change(s), left out: the comment would be too long._\n\n")
}

fn cut_note(diffs: usize, entries: usize, full_len: usize, opts: &MarkdownOptions) -> String {
    let pointer = match &opts.full_plan_url {
        Some(url) => format!("The full plan: {url}"),
        None => "For the full plan, run the same `keelson reconcile` without `--output markdown`, \
                 or read the CI job's log."
            .into(),
    };
    format!(
        "> [!WARNING]\n> This plan is too long for one comment ({full_len} characters; the limit is \
         {}). Left out: the diffs of {diffs} object(s) and {entries} further change(s). {pointer}\n",
        opts.limit
    )
}

/// The whole markdown plan, at most `opts.limit` bytes long.
pub fn render(results: &[EnvResult], blocked: &[String], opts: &MarkdownOptions) -> String {
    let outcomes = Outcomes::of(results, blocked, opts.dry_run);
    let head = head(&outcomes, opts.against.as_deref());
    let mut sections: Vec<Section> = results
        .iter()
        .zip(&outcomes.envs)
        .map(|(r, line)| section(r, line))
        .collect();
    sections.extend(blocked.iter().map(|b| blocked_section(b)));

    let full_len = head.len()
        + sections
            .iter()
            .map(|s| {
                s.open.len() + s.close.len() + s.entries.iter().map(|e| e.full.len()).sum::<usize>()
            })
            .sum::<usize>();
    if full_len <= opts.limit {
        let mut out = head;
        for s in sections {
            out.push_str(&s.open);
            s.entries.iter().for_each(|e| out.push_str(&e.full));
            out.push_str(&s.close);
        }
        return out;
    }

    // Too long: keep every section's frame, then entries in order while they
    // fit, each with its diff when that still fits.
    let worst_note = cut_note(usize::MAX, usize::MAX, full_len, opts);
    let frame: usize = sections
        .iter()
        .map(|s| s.open.len() + s.close.len() + omitted_line(usize::MAX).len())
        .sum();
    let mut budget = opts
        .limit
        .saturating_sub(head.len() + worst_note.len() + frame);
    let (mut diffs_left_out, mut entries_left_out) = (0, 0);
    let mut body = String::new();
    let mut full = true;
    for s in &sections {
        body.push_str(&s.open);
        let mut omitted = 0;
        for e in &s.entries {
            if full && e.full.len() <= budget {
                budget -= e.full.len();
                body.push_str(&e.full);
            } else if full && e.short.len() <= budget {
                budget -= e.short.len();
                body.push_str(&e.short);
                diffs_left_out += 1;
            } else {
                // Once one entry does not fit, later ones are left out too, so
                // that what is shown is a prefix of the plan.
                full = false;
                omitted += 1;
            }
        }
        if omitted > 0 {
            body.push_str(&omitted_line(omitted));
            entries_left_out += omitted;
        }
        body.push_str(&s.close);
    }
    let mut out = head;
    out.push_str(&cut_note(diffs_left_out, entries_left_out, full_len, opts));
    out.push('\n');
    out.push_str(&body);
    if out.len() > opts.limit {
        // Even the frame does not fit (thousands of environments): cut hard,
        // on a character boundary, and say so.
        let note = cut_note(diffs_left_out, entries_left_out, full_len, opts);
        let mut end = opts.limit.saturating_sub(note.len() + 2);
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str("\n\n");
        out.push_str(&note);
        if out.len() > opts.limit {
            out.truncate(0);
        }
    }
    out
}
