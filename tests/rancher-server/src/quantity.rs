//! Kubernetes quantities, as far as Rancher's quota code uses them: parse
//! (`resource.ParseQuantity`), compare, add, and print in canonical form
//! (`Quantity.String()`), which is what Rancher's messages show.
//!
//! The server keeps its own small parser on purpose: it must not share code
//! with the client it checks.

use std::collections::BTreeMap;

/// A quantity in units of 10⁻⁹, and whether it was written with a binary suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    pub nanos: i128,
    pub binary: bool,
}

const NANO: i128 = 1_000_000_000;

/// Parses `500m`, `2`, `1.5Gi`, `1e3`; `None` when it is not a quantity.
pub(crate) fn parse(s: &str) -> Option<Quantity> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (sign, body) = match s.as_bytes()[0] {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let (mul_num, mul_den, binary): (i128, i128, bool) = match suffix {
        "" => (1, 1, false),
        "n" => (1, NANO, false),
        "u" => (1, 1_000_000, false),
        "m" => (1, 1_000, false),
        "k" => (1_000, 1, false),
        "M" => (1_000_000, 1, false),
        "G" => (1_000_000_000, 1, false),
        "T" => (1_000_000_000_000, 1, false),
        "P" => (1_000_000_000_000_000, 1, false),
        "E" => (1_000_000_000_000_000_000, 1, false),
        "Ki" => (1 << 10, 1, true),
        "Mi" => (1 << 20, 1, true),
        "Gi" => (1 << 30, 1, true),
        "Ti" => (1 << 40, 1, true),
        "Pi" => (1 << 50, 1, true),
        "Ei" => (1 << 60, 1, true),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            if !(-9..=18).contains(&exp) {
                return None;
            }
            if exp >= 0 {
                (10i128.pow(exp as u32), 1, false)
            } else {
                (1, 10i128.pow((-exp) as u32), false)
            }
        }
        _ => return None,
    };
    let frac_digits = frac_part.len() as u32;
    if frac_digits > 18 {
        return None;
    }
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let scale = 10i128.pow(frac_digits);
    // value = mantissa / scale * mul_num / mul_den, in nanos, rounded up as
    // Kubernetes does for precision below its smallest unit.
    let num = mantissa.checked_mul(mul_num)?.checked_mul(NANO)?;
    let den = scale * mul_den;
    let nanos = (num + den - 1) / den;
    Some(Quantity {
        nanos: sign * nanos,
        binary,
    })
}

impl Quantity {
    /// Canonical form, as `resource.Quantity.String()` prints it.
    pub(crate) fn canonical(&self) -> String {
        let v = self.nanos;
        if v == 0 {
            return "0".into();
        }
        if self.binary && v % NANO == 0 {
            let whole = v / NANO;
            for (suffix, pow) in [
                ("Ei", 60),
                ("Pi", 50),
                ("Ti", 40),
                ("Gi", 30),
                ("Mi", 20),
                ("Ki", 10),
            ] {
                let unit = 1i128 << pow;
                if whole % unit == 0 {
                    return format!("{}{suffix}", whole / unit);
                }
            }
            if whole.abs() < 1024 {
                return whole.to_string();
            }
        }
        for (suffix, exp) in [
            ("E", 27),
            ("P", 24),
            ("T", 21),
            ("G", 18),
            ("M", 15),
            ("k", 12),
            ("", 9),
            ("m", 6),
            ("u", 3),
            ("n", 0),
        ] {
            let unit = 10i128.pow(exp);
            if v % unit == 0 {
                return format!("{}{suffix}", v / unit);
            }
        }
        format!("{v}n")
    }
}

/// Rancher's quota keys and the Kubernetes resource names they stand for
/// (`resourceQuotaConversion` in rancher/rancher `pkg/resourcequota`).
pub(crate) const QUOTA_KEYS: &[(&str, &str)] = &[
    ("configMaps", "configmaps"),
    ("limitsCpu", "limits.cpu"),
    ("limitsMemory", "limits.memory"),
    ("persistentVolumeClaims", "persistentvolumeclaims"),
    ("pods", "pods"),
    ("replicationControllers", "replicationcontrollers"),
    ("requestsCpu", "requests.cpu"),
    ("requestsMemory", "requests.memory"),
    ("requestsStorage", "requests.storage"),
    ("secrets", "secrets"),
    ("services", "services"),
    ("servicesLoadBalancers", "services.loadbalancers"),
    ("servicesNodePorts", "services.nodeports"),
];

/// Rancher key → Kubernetes resource name.
pub(crate) fn k8s_name(key: &str) -> String {
    QUOTA_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// Kubernetes resource name → Rancher key.
pub(crate) fn rancher_key(name: &str) -> String {
    QUOTA_KEYS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(k, _)| k.to_string())
        .unwrap_or_else(|| name.to_string())
}

/// A `ResourceList` keyed by Kubernetes resource name.
pub(crate) type ResourceList = BTreeMap<String, Quantity>;

/// A Rancher limit object (`{limitsCpu: "8", type: …}`) as a resource list;
/// `Err(key)` names a value that is not a quantity.
pub(crate) fn to_list(limit: &serde_json::Value) -> Result<ResourceList, String> {
    let mut out = ResourceList::new();
    if let Some(m) = limit.as_object() {
        for (k, v) in m {
            if k == "type" {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) if s.is_empty() => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => continue,
                _ => return Err(k.clone()),
            };
            let q = parse(&text).ok_or_else(|| k.clone())?;
            out.insert(k8s_name(k), q);
        }
    }
    Ok(out)
}

/// A resource list as a Rancher limit object, values in canonical form.
pub(crate) fn to_limit(list: &ResourceList) -> serde_json::Map<String, serde_json::Value> {
    list.iter()
        .map(|(k, v)| (rancher_key(k), serde_json::Value::String(v.canonical())))
        .collect()
}

/// `quota.Add`: the sum per resource; the format of the first operand wins.
pub(crate) fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        out.entry(k.clone())
            .and_modify(|x| x.nanos += v.nanos)
            .or_insert(*v);
    }
    out
}

/// `quota.LessThanOrEqual(a, b)` plus `quota.IsNegative(a)`, masked to `a`:
/// the resources of `a` that exceed `b` (only names `b` limits count) or
/// are negative — what Rancher's `IsQuotaFit`/`quotaFits` report.
pub(crate) fn exceeded(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .filter(|(k, v)| v.nanos < 0 || b.get(*k).is_some_and(|lim| v.nanos > lim.nanos))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// `format.ResourceList`: `name=value` pairs, sorted, comma-separated.
pub(crate) fn format_list(list: &ResourceList) -> String {
    let mut parts: Vec<String> = list
        .iter()
        .map(|(k, v)| format!("{k}={}", v.canonical()))
        .collect();
    parts.sort();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_kubernetes() {
        for (input, canonical) in [
            ("500m", "500m"),
            ("0.5", "500m"),
            ("2000m", "2"),
            ("1000", "1k"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("16Gi", "16Gi"),
            ("1e3", "1k"),
            ("0", "0"),
        ] {
            assert_eq!(parse(input).unwrap().canonical(), canonical, "{input}");
        }
        assert!(parse("abc").is_none());
        assert!(parse("1.2.3").is_none());
        assert!(parse("5Qi").is_none());
        assert!(parse("-1").unwrap().nanos < 0);
    }

    #[test]
    fn exceeded_counts_only_limited_resources_and_negatives() {
        let a =
            to_list(&serde_json::json!({"limitsCpu": "8", "pods": "-1", "secrets": "9"})).unwrap();
        let b = to_list(&serde_json::json!({"limitsCpu": "4", "pods": "10"})).unwrap();
        assert_eq!(format_list(&exceeded(&a, &b)), "limits.cpu=8,pods=-1");
    }
}
