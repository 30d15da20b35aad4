//! Kubernetes quantities: parse `500m`, `2`, `1Gi`, `1.5G` into numbers, and
//! write them back in the canonical short forms.

/// Parse a quantity into its value in base units (cores, bytes).
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mul = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * mul)
}

/// Whether two quantities mean the same amount (`1000m` = `1`, `1Gi` = `1024Mi`).
pub fn equal(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// A CPU amount written as millicores (`125m`), or whole cores when exact.
pub fn format_cpu(cores: f64) -> String {
    let millis = (cores * 1000.0).ceil() as u64;
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// A byte amount in the largest binary unit that divides it (`512Mi`).
pub fn format_bytes(bytes: f64) -> String {
    let b = bytes.ceil() as u64;
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares_equivalent_forms() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1Gi"), Some(1073741824.0));
        assert!(equal("1000m", "1"));
        assert!(equal("1Gi", "1024Mi"));
        assert!(!equal("1G", "1Gi"));
        assert_eq!(parse("12x"), None);
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(format_cpu(0.125), "125m");
        assert_eq!(format_cpu(2.0), "2");
        assert_eq!(format_bytes(512.0 * 1024.0 * 1024.0), "512Mi");
        assert_eq!(format_bytes(2.0 * 1024.0 * 1024.0 * 1024.0), "2Gi");
        assert_eq!(format_bytes(1000.0), "1000");
    }
}
