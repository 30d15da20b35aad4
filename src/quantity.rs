//! Kubernetes quantities (`500m`, `1`, `1Gi`, `1024Mi`, `2e3`) compared by
//! value, so that spellings Rancher or a person chose differently do not show
//! up as drift.

/// Nano-units per unit: every quantity is held as an integer count of 10⁻⁹,
/// which represents `n` exactly and still fits `Ei` in an `i128`.
const NANO: i128 = 1_000_000_000;

/// Parses a quantity into nano-units, or `None` when it is not one.
pub fn parse(text: &str) -> Option<i128> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let (sign, body) = match s.as_bytes()[0] {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(num_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    // Digits beyond nano precision cannot matter for a Kubernetes quantity.
    let frac: String = frac_part.chars().take(9).collect();
    let mut value: i128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse::<i128>().ok()?.checked_mul(NANO)?
    };
    if !frac.is_empty() {
        let scale = 10i128.pow(9 - frac.len() as u32);
        value = value.checked_add(frac.parse::<i128>().ok()? * scale)?;
    }
    let scaled = apply_suffix(value, suffix)?;
    Some(sign * scaled)
}

fn apply_suffix(value: i128, suffix: &str) -> Option<i128> {
    let binary = |p: u32| value.checked_mul(1024i128.checked_pow(p)?);
    let decimal_up = |p: u32| value.checked_mul(10i128.checked_pow(p)?);
    let decimal_down = |p: u32| Some(value / 10i128.pow(p));
    match suffix {
        "" => Some(value),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        "n" => decimal_down(9),
        "u" => decimal_down(6),
        "m" => decimal_down(3),
        "k" => decimal_up(3),
        "M" => decimal_up(6),
        "G" => decimal_up(9),
        "T" => decimal_up(12),
        "P" => decimal_up(15),
        "E" => decimal_up(18),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let exp: i32 = exp.parse().ok()?;
            if exp >= 0 {
                decimal_up(exp as u32)
            } else {
                let down = (-exp) as u32;
                if down > 38 {
                    Some(0)
                } else {
                    decimal_down(down)
                }
            }
        }
    }
}

/// Prints nano-units in the canonical form Kubernetes uses
/// (`resource.Quantity.String()`): the largest binary suffix that divides
/// evenly when `binary` (the value was written with `Ki`…`Ei`), otherwise
/// the largest decimal one (`24`, `1500m`, `2k`).
pub fn format(nanos: i128, binary: bool) -> String {
    if nanos == 0 {
        return "0".into();
    }
    if binary && nanos % NANO == 0 {
        let whole = nanos / NANO;
        for (suffix, pow) in [
            ("Ei", 60),
            ("Pi", 50),
            ("Ti", 40),
            ("Gi", 30),
            ("Mi", 20),
            ("Ki", 10),
        ] {
            if whole % (1i128 << pow) == 0 {
                return format!("{}{suffix}", whole / (1i128 << pow));
            }
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
    ] {
        let unit = 10i128.pow(exp);
        if nanos % unit == 0 {
            return format!("{}{suffix}", nanos / unit);
        }
    }
    format!("{nanos}n")
}

/// True when the spelling uses a binary suffix (`Ki` … `Ei`).
pub fn is_binary(text: &str) -> bool {
    text.trim().ends_with('i')
}

/// True when two spellings mean the same quantity; falls back to text
/// equality when either is not a quantity.
pub fn same(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_canonical_form() {
        assert_eq!(format(parse("24").unwrap(), false), "24");
        assert_eq!(format(parse("1500m").unwrap(), false), "1500m");
        assert_eq!(format(parse("48Gi").unwrap(), true), "48Gi");
        assert_eq!(format(parse("1536Mi").unwrap(), true), "1536Mi");
        assert_eq!(format(parse("2000").unwrap(), false), "2k");
    }

    #[test]
    fn equal_spellings_compare_equal() {
        assert!(same("1", "1000m"));
        assert!(same("1Gi", "1024Mi"));
        assert!(same("0.5", "500m"));
        assert!(same("2e3", "2k"));
        assert!(same("128Mi", "134217728"));
        assert!(same("1.5Gi", "1536Mi"));
        assert!(same(" 40 ", "40000m"));
    }

    #[test]
    fn different_values_differ() {
        assert!(!same("1", "999m"));
        assert!(!same("1G", "1Gi"));
        assert!(!same("200", "201"));
    }

    #[test]
    fn non_quantities_are_refused() {
        for bad in ["", "abc", "1.2.3", "5Xi", ".", "1 Gi"] {
            assert_eq!(parse(bad), None, "{bad:?} should not parse");
        }
    }

    #[test]
    fn large_binary_suffixes_fit() {
        assert_eq!(parse("8Ei"), Some(8 * 1024i128.pow(6) * NANO));
    }
}
