//! Kubernetes quantities as numbers for arithmetic, and written back in the
//! canonical short forms. The exact parser is [`crate::quantity`].

/// Parse a quantity into its value in base units (cores, bytes), for
/// arithmetic (requests, heap sizes). Parsing itself is [`crate::quantity`]'s.
pub fn parse(q: &str) -> Option<f64> {
    crate::quantity::parse(q).map(|nano| nano as f64 / 1e9)
}

/// Whether two quantities mean the same amount (`1000m` = `1`, `1Gi` = `1024Mi`), exactly.
pub fn equal(a: &str, b: &str) -> bool {
    crate::quantity::same(a, b)
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
