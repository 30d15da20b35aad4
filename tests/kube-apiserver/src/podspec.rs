//! Validation of pod specs and Services with the real server's field paths and messages
//! (pkg/apis/core/validation/validation.go: validateEnv, validateContainerPorts,
//! validateServicePort, ValidatePortNumOrName; apimachinery's IsValidPortName and
//! IsRelaxedEnvVarName, which 1.32 enables by default).

use serde_json::{Value, json};

use crate::status::FieldError;

/// `IsValidPortName` (IANA_SVC_NAME): each message is its own error.
pub fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    let b = name.as_bytes();
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        || b.is_empty()
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    } else if !b.iter().any(u8::is_ascii_lowercase) {
        errs.push("must contain at least one letter (a-z)");
    } else if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    } else if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

const PORT_NUM_MSG: &str = "must be between 1 and 65535, inclusive";

fn valid_port_num(v: &Value) -> bool {
    v.as_i64().is_some_and(|p| (1..=65535).contains(&p))
}

/// Containers of a pod spec at `at` (`spec.template.spec`): env names, port names, numbers and
/// duplicates.
pub fn containers(at: &str, spec: &Value, errs: &mut Vec<FieldError>) {
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec[list].as_array() else {
            continue;
        };
        for (i, c) in cs.iter().enumerate() {
            let field = format!("{at}.{list}[{i}]");
            env(&field, c, errs);
            ports(&field, c, errs);
        }
    }
    crate::validation::labels(&format!("{at}.nodeSelector"), &spec["nodeSelector"], errs);
}

fn env(field: &str, c: &Value, errs: &mut Vec<FieldError>) {
    let Some(vars) = c["env"].as_array() else {
        return;
    };
    for (j, ev) in vars.iter().enumerate() {
        let path = format!("{field}.env[{j}].name");
        let name = ev["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(&path, ""));
            errs.push(FieldError::invalid(
                &path,
                &json!(name),
                "environment variable name must be non-empty",
            ));
        } else if name
            .chars()
            .any(|r| !r.is_ascii() || r.is_ascii_control() || r == '=')
        {
            errs.push(FieldError::invalid(
                &path,
                &json!(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
}

fn ports(field: &str, c: &Value, errs: &mut Vec<FieldError>) {
    let Some(ports) = c["ports"].as_array() else {
        return;
    };
    let mut names: Vec<&str> = Vec::new();
    for (j, p) in ports.iter().enumerate() {
        let at = format!("{field}.ports[{j}]");
        if let Some(name) = p["name"].as_str().filter(|n| !n.is_empty()) {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(format!("{at}.name"), &json!(name), m));
                }
            } else if names.contains(&name) {
                errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
            } else {
                names.push(name);
            }
        }
        match &p["containerPort"] {
            Value::Null => errs.push(FieldError::required(format!("{at}.containerPort"), "")),
            v if !valid_port_num(v) => errs.push(FieldError::invalid(
                format!("{at}.containerPort"),
                v,
                PORT_NUM_MSG,
            )),
            _ => {}
        }
    }
}

/// A Service's ports: names (DNS-1123 labels, required when there are several, unique), port
/// numbers, `(port, protocol)` pairs unique, and `targetPort` names (IANA_SVC_NAME).
pub fn service_ports(spec: &Value, errs: &mut Vec<FieldError>) {
    let Some(ports) = spec["ports"].as_array() else {
        return;
    };
    let several = ports.len() > 1;
    let mut names: Vec<&str> = Vec::new();
    let mut pairs: Vec<(String, i64)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        match p["name"].as_str().unwrap_or_default() {
            "" if several => errs.push(FieldError::required(format!("{at}.name"), "")),
            "" => {}
            name => {
                if !crate::objects::is_label(name) {
                    errs.push(FieldError::invalid(
                        format!("{at}.name"),
                        &json!(name),
                        crate::objects::LABEL_MSG,
                    ));
                }
                if names.contains(&name) {
                    errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
                } else {
                    names.push(name);
                }
            }
        }
        if !valid_port_num(&p["port"]) {
            errs.push(FieldError::invalid(
                format!("{at}.port"),
                &p["port"],
                PORT_NUM_MSG,
            ));
        }
        match &p["targetPort"] {
            Value::String(s) => {
                for m in port_name_errors(s) {
                    errs.push(FieldError::invalid(
                        format!("{at}.targetPort"),
                        &json!(s),
                        m,
                    ));
                }
            }
            v @ Value::Number(_) if !valid_port_num(v) => errs.push(FieldError::invalid(
                format!("{at}.targetPort"),
                v,
                PORT_NUM_MSG,
            )),
            _ => {}
        }
        let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
        let port = p["port"].as_i64().unwrap_or(0);
        let pair = (protocol, port);
        if pairs.contains(&pair) {
            // field.Duplicate of a core.ServicePort key prints Go's %#v of the struct.
            errs.push(FieldError {
                reason: "FieldValueDuplicate",
                field: at,
                message: format!(
                    "Duplicate value: core.ServicePort{{Name:\"\", Protocol:\"{}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    pair.0, pair.1
                ),
            });
        } else {
            pairs.push(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_follow_iana_svc_name() {
        assert!(port_name_errors("http").is_empty());
        assert_eq!(
            port_name_errors("http-metrics-endpoint"),
            ["must be no more than 15 characters"]
        );
        assert_eq!(
            port_name_errors("8080"),
            ["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_errors("Http"),
            ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]
        );
        assert_eq!(
            port_name_errors("a--b"),
            ["must not contain consecutive hyphens"]
        );
    }
}
