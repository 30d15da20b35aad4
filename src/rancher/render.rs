//! Text and Markdown forms of a [`RancherPlan`], printed beside the
//! Kubernetes plan. JSON is the plan's serde form.

use super::plan::{Action, FieldDiff, RancherPlan};

fn sign(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::Unchanged => "=",
    }
}

fn value(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("(none)")
}

fn diff_line(d: &FieldDiff) -> String {
    format!("{}: {} -> {}", d.field, value(&d.before), value(&d.after))
}

impl RancherPlan {
    /// Plain text: one line per change, field diffs indented below it.
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "Rancher (cluster {}, project {}): {} change(s)\n",
            self.cluster_id,
            self.project,
            self.change_count()
        );
        for c in &self.changes {
            s.push_str(&format!("  {} {}\n", sign(c.action), c.summary));
            for d in &c.diff {
                s.push_str(&format!("      {}\n", diff_line(d)));
            }
            if let Some(why) = &c.refused {
                s.push_str(&format!("      ! Rancher would refuse this: {why}\n"));
            }
        }
        if self.refusals().next().is_some() {
            s.push_str("  Nothing will be applied to Rancher for this environment until the refusals above are resolved.\n");
        }
        s
    }

    /// Markdown: a table of changes, unchanged rows left out.
    pub fn render_markdown(&self) -> String {
        let mut s = format!(
            "#### Rancher: project `{}` in cluster `{}`\n\n",
            self.project, self.cluster_id
        );
        if !self.has_changes() {
            s.push_str("No changes.\n");
            return s;
        }
        s.push_str("| | Change | Fields |\n|---|---|---|\n");
        for c in self
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
        {
            let fields: Vec<String> = c
                .diff
                .iter()
                .map(|d| format!("`{}`", diff_line(d).replace('|', "\\|")))
                .collect();
            let mut summary = c.summary.replace('|', "\\|");
            if let Some(why) = &c.refused {
                summary.push_str(&format!(
                    "<br>**Rancher would refuse this:** {}",
                    why.replace('|', "\\|")
                ));
            }
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                sign(c.action),
                summary,
                fields.join("<br>")
            ));
        }
        s
    }
}
