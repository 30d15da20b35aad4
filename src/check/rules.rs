//! CEL policy rules (the expression language of Kubernetes
//! ValidatingAdmissionPolicy), evaluated per app or per environment.

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Program};
use serde_json::{Value as Json, json};

use crate::diag::{Diagnostic, Severity};
use crate::render::merge::{ResolvedApp, ResolvedEnv, SourcedRule};
use crate::render::quantity;
use crate::spec::{Doc, Policy, RuleScope, RuleSeverity};

/// Compiled rules, by expression text.
#[derive(Default)]
pub struct Compiled {
    programs: HashMap<String, Result<Arc<Program>, String>>,
}

impl Compiled {
    /// Compile every rule of every policy; compile errors become diagnostics
    /// at the rule's `expr`.
    pub fn new(policies: &[Doc<Policy>], diags: &mut Vec<Diagnostic>) -> Compiled {
        let mut c = Compiled::default();
        for p in policies {
            for (i, rule) in p.value.spec.rules.iter().enumerate() {
                if c.programs.contains_key(&rule.expr) {
                    continue;
                }
                let compiled = Program::compile(&rule.expr).map(Arc::new).map_err(|e| {
                    e.errors
                        .iter()
                        .map(|e| e.msg.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                if let Err(msg) = &compiled {
                    diags.push(
                        Diagnostic::error(
                            "policy",
                            &p.file,
                            Some(p.node.locate(&format!("/spec/rules/{i}/expr"), false)),
                            format!("rule `{}` is not valid CEL: {msg}", rule.name),
                        )
                        .with_help(
                            "variables are `app` and `env`; see the README for their fields",
                        ),
                    );
                }
                c.programs.insert(rule.expr.clone(), compiled);
            }
        }
        c
    }

    /// Whether every rule compiled.
    pub fn all_ok(&self) -> bool {
        self.programs.values().all(Result::is_ok)
    }

    /// Evaluate the rules of `env` over its apps. `env` is bound once for
    /// the environment and each app once, in a scope every rule of that app
    /// shares: binding converts the whole value, so doing it per rule would
    /// cost O(apps²).
    pub fn evaluate(&self, env: &ResolvedEnv) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let Ok(env_value) = cel::to_value(env_json(env)) else {
            return out;
        };
        let mut root = Context::default();
        root.add_variable_from_value("env", env_value);
        let programs: Vec<(&SourcedRule, &Program)> = env
            .rules
            .iter()
            .filter_map(|r| match self.programs.get(&r.rule.expr) {
                Some(Ok(p)) => Some((r, p.as_ref())),
                _ => None,
            })
            .collect();
        for (r, program) in &programs {
            if r.rule.scope == Some(RuleScope::Environment) {
                out.extend(run(&root, program, r, env, None));
            }
        }
        for app in &env.apps {
            let Ok(value) = cel::to_value(app_json(app)) else {
                continue;
            };
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("app", value);
            for (r, program) in &programs {
                if r.rule.scope.unwrap_or(RuleScope::App) == RuleScope::App {
                    out.extend(run(&ctx, program, r, env, Some(app)));
                }
            }
        }
        out
    }
}

fn run(
    ctx: &Context,
    program: &Program,
    r: &SourcedRule,
    env: &ResolvedEnv,
    app: Option<&ResolvedApp>,
) -> Option<Diagnostic> {
    let subject = app.map_or_else(String::new, |a| format!(" (app `{}`)", a.name));
    let span = app.map(|a| a.span);
    match program.execute(ctx) {
        Ok(cel::Value::Bool(true)) => None,
        Ok(cel::Value::Bool(false)) => {
            let severity = match r.rule.severity.unwrap_or(RuleSeverity::Error) {
                RuleSeverity::Error => Severity::Error,
                RuleSeverity::Warning => Severity::Warning,
            };
            let mut d = Diagnostic::error(
                "policy",
                &env.file,
                span,
                format!(
                    "{}{subject} [policy `{}`, rule `{}`]",
                    r.rule.message, r.policy, r.rule.name
                ),
            )
            .with_help(format!(
                "the rule is `{}` at {}:{}:{}",
                r.rule.expr,
                r.file.display(),
                r.span.start.line,
                r.span.start.col
            ));
            d.severity = severity;
            Some(d)
        }
        Ok(other) => Some(Diagnostic::error(
            "policy",
            &r.file,
            Some(r.span),
            format!(
                "rule `{}` returned {other:?}{subject}, expected true or false",
                r.rule.name
            ),
        )),
        Err(e) => Some(
            Diagnostic::error(
                "policy",
                &r.file,
                Some(r.span),
                format!("rule `{}` failed to evaluate{subject}: {e}", r.rule.name),
            )
            .with_help("use has(app.field) before reading an optional field"),
        ),
    }
}

/// What rules see as `env`.
pub fn env_json(env: &ResolvedEnv) -> Json {
    json!({
        "name": env.name,
        "cluster": env.cluster,
        "namespace": env.namespace,
        "labels": env.labels,
        "apps": env.apps.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
    })
}

/// What rules see as `app`. Optional fields are absent rather than null, so
/// rules test them with `has(app.health)`.
pub fn app_json(app: &ResolvedApp) -> Json {
    let mut v = json!({
        "name": app.name,
        "image": app.image(),
        "repository": app.repository,
        "tag": app.tag,
        "digest": app.digest,
        "runtime": serde_json::to_value(app.runtime).unwrap_or(Json::Null),
        "replicas": app.replicas,
        "cpu": app.cpu,
        "memory": app.memory,
        "cpuMillis": quantity::parse(&app.cpu).map_or(0, |c| (c * 1000.0).round() as i64),
        "memoryBytes": quantity::parse(&app.memory).map_or(0, |b| b as i64),
        "ports": app.ports.iter().map(|p| json!({"name": p.name, "port": p.port})).collect::<Vec<_>>(),
        "env": app.env,
        "labels": app.labels,
        "nodeSelector": app.node_selector,
    });
    let o = v.as_object_mut().expect("object");
    if let Some(h) = &app.health {
        o.insert(
            "health".into(),
            serde_json::to_value(h).unwrap_or(Json::Null),
        );
    }
    if let Some(d) = &app.domain {
        o.insert("domain".into(), json!(d));
    }
    if let Some(r) = &app.region {
        o.insert("region".into(), json!(r));
    }
    v
}
