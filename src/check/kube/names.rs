//! The name and value formats of `k8s.io/apimachinery/pkg/util/validation`
//! (`validation.go`), with the messages the API server prints. Each function
//! returns the problems found, empty when the value is valid.

/// `validation.IsDNS1123Label`: names of Namespaces, containers, volumes.
pub fn dns1123_label(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 63 {
        out.push(max_len(63));
    }
    if !is_label(v, false) {
        out.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into());
    }
    out
}

/// `validation.IsDNS1123Subdomain`: names of most kinds.
pub fn dns1123_subdomain(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 253 {
        out.push(max_len(253));
    }
    if !is_subdomain(v) {
        out.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
    }
    out
}

/// `validation.IsDNS1035Label`: Service names.
pub fn dns1035_label(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 63 {
        out.push(max_len(63));
    }
    if !is_label(v, true) {
        out.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into());
    }
    out
}

/// `validation.IsWildcardDNS1123Subdomain`, or a plain subdomain: Ingress
/// hosts (`networking/validation.validateIngressRules`).
pub fn host(v: &str) -> Vec<String> {
    if let Some(rest) = v.strip_prefix("*.") {
        if v.len() > 253 {
            return vec![max_len(253)];
        }
        if is_subdomain(rest) {
            return Vec::new();
        }
        return vec!["a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()];
    }
    if v.parse::<std::net::IpAddr>().is_ok() {
        return vec!["must be a DNS name, not an IP address".into()];
    }
    dns1123_subdomain(v)
}

/// `validation.IsQualifiedName`: label keys, annotation keys, selector keys.
pub fn qualified_name(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = v.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                out.push("prefix part must be non-empty".into());
            } else {
                out.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => {
            out.push(format!("a qualified name {QUALIFIED_TAIL} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return out;
        }
    };
    if name.is_empty() {
        out.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        out.push(format!("name part {}", max_len(63)));
    }
    if !name.is_empty() && !is_label_value(name) {
        out.push(format!("name part {QUALIFIED_TAIL}"));
    }
    out
}

const QUALIFIED_TAIL: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// `validation.IsValidLabelValue`: label values, selector values, node
/// selector values.
pub fn label_value(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 63 {
        out.push(max_len(63));
    }
    if !v.is_empty() && !is_label_value(v) {
        out.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
    }
    out
}

/// `validation.IsValidPortNum`.
pub fn port_num(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// `validation.IsValidPortName` (IANA_SVC_NAME, RFC 6335): container port
/// names and `targetPort` / probe port names.
pub fn port_name(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 15 {
        out.push(max_len(15));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || v.is_empty()
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if v.contains("--") {
        out.push("must not contain consecutive hyphens".into());
    }
    if !v.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if v.starts_with('-') || v.ends_with('-') {
        out.push("must not begin or end with a hyphen".into());
    }
    out
}

/// `validation.IsEnvVarName` (before Kubernetes 1.32, or with the
/// `RelaxedEnvironmentVariableValidation` gate off).
pub fn env_var_name(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ok = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && v.bytes().next().is_some_and(|b| !b.is_ascii_digit());
    if !ok {
        out.push("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')".into());
    }
    out.extend(dot_rules(v));
    out
}

/// `validation.IsRelaxedEnvVarName` (Kubernetes 1.32 and later: the
/// `RelaxedEnvironmentVariableValidation` gate is on by default).
pub fn relaxed_env_var_name(v: &str) -> Vec<String> {
    if v.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".into()]
    }
}

/// `validation.IsConfigMapKey`: keys of ConfigMap and Secret data, and of
/// `configMapKeyRef` / `secretKeyRef`.
pub fn config_map_key(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 253 {
        out.push(max_len(253));
    }
    if v.is_empty()
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into());
    }
    out.extend(dot_rules(v));
    out
}

/// `validation.IsValidPercent`.
pub fn percent(v: &str) -> Vec<String> {
    match v.strip_suffix('%') {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Vec::new(),
        _ => vec!["a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')".into()],
    }
}

/// `path.IsValidPathSegmentName`: names of RBAC objects.
pub fn path_segment(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v == "." || v == ".." {
        out.push(format!("may not be '{v}'"));
    }
    for bad in ["/", "%"] {
        if v.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

fn dot_rules(v: &str) -> Vec<String> {
    if v == "." {
        vec!["must not be '.'".into()]
    } else if v == ".." {
        vec!["must not be '..'".into()]
    } else if v.starts_with("..") {
        vec!["must not start with '..'".into()]
    } else {
        Vec::new()
    }
}

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, or `[a-z]([-a-z0-9]*[a-z0-9])?` when
/// `alpha_first` (DNS-1035).
fn is_label(v: &str, alpha_first: bool) -> bool {
    let b = v.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let end = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.iter().all(inner)
        && end(&b[b.len() - 1])
        && if alpha_first {
            b[0].is_ascii_lowercase()
        } else {
            end(&b[0])
        }
}

fn is_subdomain(v: &str) -> bool {
    !v.is_empty() && v.split('.').all(|l| is_label(l, false))
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cases from k8s.io/apimachinery/pkg/util/validation/validation_test.go.
    #[test]
    fn labels_and_subdomains() {
        for ok in [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "a.b",
        ] {
            assert!(dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in [
            "", "A", "ABC", "aBc", "A1", "a_1", "a..b", "_a", "a_", "a.", "-1", "1-",
        ] {
            assert!(!dns1123_subdomain(bad).is_empty(), "{bad}");
        }
        assert!(dns1123_label("a.b").len() == 1);
        assert!(dns1035_label("0a").len() == 1);
        assert!(dns1035_label("a0").is_empty());
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn qualified_names_and_label_values() {
        for ok in [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "example.com/Uppercase_OK.x",
            "a/b",
        ] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        for bad in [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash",
            "only/one/slash",
            "Example.com/abc",
            "/simple",
            "simple/",
            &"x".repeat(64),
        ] {
            assert!(!qualified_name(bad).is_empty(), "{bad}");
        }
        for ok in [
            "",
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            "UPPER.case_ok",
        ] {
            assert!(label_value(ok).is_empty(), "{ok}");
        }
        for bad in [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.Atua",
            "-starts-with-dash",
            "ends-with-dash-",
            ".starts.with.dot",
            "with space",
            &"x".repeat(64),
        ] {
            assert!(!label_value(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn port_names_follow_iana_svc_name() {
        for ok in [
            "telnet",
            "re-mail-ck",
            "pop3",
            "a",
            "a-1",
            "1-a",
            "a-1-b-2-c",
            "1-a-2-b-3",
        ] {
            assert!(port_name(ok).is_empty(), "{ok}");
        }
        for bad in [
            "longerthan15characters",
            "",
            "12345",
            "1-2-3-4",
            "-begin",
            "end-",
            "two--hyphens",
            "whois++",
            "Upper",
        ] {
            assert!(!port_name(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn env_var_names_and_config_keys() {
        for ok in ["A", "ABC", "AbC_123", "_ABC", "a.b", "-x", "a-b"] {
            assert!(env_var_name(ok).is_empty(), "{ok}");
        }
        for bad in ["1ABC", "A B", "A=B", "..", ".", "..a", ""] {
            assert!(!env_var_name(bad).is_empty(), "{bad}");
        }
        assert!(relaxed_env_var_name("1 A:B").is_empty());
        assert!(!relaxed_env_var_name("A=B").is_empty());
        assert!(!relaxed_env_var_name("é").is_empty());
        for ok in ["a", "KEY_NAME", "key.name", "key-name", ".dotfile"] {
            assert!(config_map_key(ok).is_empty(), "{ok}");
        }
        for bad in ["", "a b", "a/b", ".", "..", "..a"] {
            assert!(!config_map_key(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn hosts_percents_and_path_segments() {
        assert!(host("*.example.com").is_empty());
        assert!(!host("*").is_empty());
        assert!(!host("10.0.0.1").is_empty());
        assert!(!host("Example.com").is_empty());
        assert!(percent("25%").is_empty());
        assert!(!percent("25").is_empty());
        assert!(!percent("%").is_empty());
        assert!(path_segment("admin:view").is_empty());
        assert!(!path_segment("a/b").is_empty());
    }
}
