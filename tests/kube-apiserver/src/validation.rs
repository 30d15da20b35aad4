//! Field validation shared by kinds: label keys and values, resource quantities, and container
//! requests against limits, with the real server's messages.

use serde_json::{Value, json};

use crate::status::{ApiError, FieldError};

const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUANTITY_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

fn label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Check a label map (`metadata.labels`, a selector's `matchLabels`) at `field`.
pub fn labels(field: &str, map: &Value, errs: &mut Vec<FieldError>) {
    let Some(m) = map.as_object() else { return };
    for (k, v) in m {
        let (prefix, name) = match k.split_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, k.as_str()),
        };
        if name.len() > 63 {
            errs.push(FieldError::invalid(
                field,
                &json!(k),
                "name part must be no more than 63 characters",
            ));
        } else if !label_chars(name) {
            errs.push(FieldError::invalid(field, &json!(k), NAME_PART_MSG));
        } else if let Some(p) = prefix
            && !(p.len() <= 253
                && p.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                }))
        {
            errs.push(FieldError::invalid(field, &json!(k), "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
        }
        match v.as_str() {
            None => errs.push(FieldError::invalid(
                format!("{field}[{k}]"),
                v,
                "must be a string",
            )),
            Some(s) if s.len() > 63 => errs.push(FieldError::invalid(
                field,
                v,
                "must be no more than 63 characters",
            )),
            Some(s) if !s.is_empty() && !label_chars(s) => {
                errs.push(FieldError::invalid(field, v, LABEL_VALUE_MSG))
            }
            Some(_) => {}
        }
    }
}

/// Parse a Kubernetes quantity (`250m`, `512Mi`, `1.5`, `1e3`) to a number, or None if malformed.
pub fn quantity(q: &Value) -> Option<f64> {
    let s = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// Check one container's resources: malformed quantities are a decode error (400, as the real
/// server answers before validation); a request above its limit is Invalid.
pub fn resources(
    kind: &str,
    field: &str,
    container: &Value,
    errs: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    let res = &container["resources"];
    for part in ["requests", "limits"] {
        if let Some(m) = res[part].as_object() {
            for v in m.values() {
                if quantity(v).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"v1\" cannot be handled as a {kind}: {QUANTITY_MSG}"
                    )));
                }
            }
        }
    }
    if let (Some(req), Some(lim)) = (res["requests"].as_object(), res["limits"].as_object()) {
        for (name, r) in req {
            if let (Some(rv), Some(l)) = (quantity(r), lim.get(name))
                && let Some(lv) = quantity(l)
                && rv > lv
            {
                let shown = r
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| r.to_string());
                let limit = l
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| l.to_string());
                errs.push(FieldError::invalid(
                    format!("{field}.resources.requests"),
                    &json!(shown),
                    &format!("must be less than or equal to {name} limit of {limit}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("250m")), Some(0.25));
        assert_eq!(quantity(&json!("512Mi")), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(quantity(&json!(2)), Some(2.0));
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!("512mb")), None);
    }

    #[test]
    fn label_rules() {
        let mut errs = Vec::new();
        labels(
            "metadata.labels",
            &json!({"app": "web", "keelson.dev/environment": "dev", "x": ""}),
            &mut errs,
        );
        assert!(errs.is_empty());
        labels(
            "metadata.labels",
            &json!({"app": "bad value!", "bad key": "x"}),
            &mut errs,
        );
        assert_eq!(errs.len(), 2);
    }
}
