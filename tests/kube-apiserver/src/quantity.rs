//! Resource quantities as the API server stores them: parsed like `resource.ParseQuantity` and
//! written back like `Quantity.String()` / `CanonicalizeBytes`
//! (k8s.io/apimachinery/pkg/api/resource/quantity.go), so `0.5` reads back as `500m`, `1024Mi`
//! as `1Gi` and `1000m` as `1`.

/// Why a quantity did not parse; the texts are apimachinery's `ErrFormatWrong`, `ErrSuffix` and
/// `ErrNumeric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not `[+-]digits[.digits]suffix`.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    /// A suffix that is neither SI, binary SI nor an exponent.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// A number too large to hold.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

struct Parts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// `parseQuantityString`: sign, numerator without leading zeros, fraction digits, suffix.
fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if pos < end && (b[0] == b'-' || b[0] == b'+') {
        positive = b[0] == b'+';
        pos += 1;
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts {
            positive,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[start..pos];
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let d = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `suffixHandler.interpret`: (base, exponent, format).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, Format::DecimalSI));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, Format::BinarySI));
    }
    if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
        let e: i64 = suffix[1..].parse().ok()?;
        return Some((10, i32::try_from(e).ok()?, Format::DecimalExponent));
    }
    None
}

/// A parsed quantity: `sign * mantissa * 10^scale`, rounded up to nano precision.
struct Parsed {
    negative: bool,
    mantissa: u128,
    scale: i32,
    format: Format,
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

/// Parse a quantity; the flag tells whether Kubernetes keeps the text as it was sent (its
/// "already canonical" shortcut).
fn parse(s: &str) -> Result<(Parsed, bool), QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let p = split(s)?;
    let (base, exponent, mut format) = interpret(p.suffix).ok_or(QuantityError::Suffix)?;
    let digits = format!("{}{}", p.num, p.denom);
    let value: u128 = digits.parse().map_err(|_| QuantityError::Numeric)?;
    // The fast path of ParseQuantity keeps the original text when it is already canonical.
    let precision = match format {
        Format::DecimalSI | Format::DecimalExponent => 18 - (p.num.len() + p.denom.len()) as i64,
        Format::BinarySI if exponent >= 0 && p.denom.is_empty() => {
            15 - p.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1
        }
        Format::BinarySI => -1,
    };
    if precision >= 0 {
        let scale = if base == 10 { exponent } else { 0 } - p.denom.len() as i32;
        if scale >= -9 && value <= i64::MAX as u128 {
            let keep = match format {
                Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                _ => scale % 3 == 0 && !digits.ends_with("000") && !digits.starts_with('0'),
            };
            let mult = if base == 2 { 1u128 << exponent } else { 1 };
            if let Some(r) = value.checked_mul(mult).filter(|r| *r <= i64::MAX as u128) {
                let q = Parsed {
                    negative: !p.positive,
                    mantissa: r,
                    scale,
                    format,
                };
                return Ok((q, keep || s == "0"));
            }
        }
    }
    // The general path: exact decimal arithmetic, then rounding up to nano units.
    let mut mantissa = value;
    let mut scale = -(p.denom.len() as i32);
    if base == 10 {
        scale += exponent;
    } else {
        mantissa = mantissa
            .checked_mul(
                1u128
                    .checked_shl(exponent as u32)
                    .ok_or(QuantityError::Numeric)?,
            )
            .ok_or(QuantityError::Numeric)?;
    }
    if mantissa != 0 && scale < -9 {
        let div = pow10((-9 - scale) as u32);
        mantissa = match div {
            Some(d) => mantissa.div_ceil(d),
            None => 1,
        };
        scale = -9;
    }
    let bigger_than_one = match scale {
        s if s >= 0 => mantissa > 0,
        s => pow10((-s) as u32).is_some_and(|d| mantissa >= d),
    };
    if format == Format::BinarySI && mantissa != 0 && !bigger_than_one {
        format = Format::DecimalSI;
    }
    let q = Parsed {
        negative: !p.positive,
        mantissa,
        scale,
        format,
    };
    Ok((q, false))
}

/// Compare two quantities by value (`Quantity.Cmp`); `None` when either does not parse or the
/// values are too far apart in scale to compare exactly.
pub fn compare(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let (a, _) = parse(a).ok()?;
    let (b, _) = parse(b).ok()?;
    let low = a.scale.min(b.scale);
    let widen = |q: &Parsed| -> Option<i128> {
        let m = q.mantissa.checked_mul(pow10((q.scale - low) as u32)?)?;
        let m = i128::try_from(m).ok()?;
        Some(if q.negative { -m } else { m })
    };
    Some(widen(&a)?.cmp(&widen(&b)?))
}

/// `CanonicalizeBytes` of a parsed value.
fn canonical(q: &Parsed) -> String {
    if q.mantissa == 0 {
        return "0".into();
    }
    let sign = if q.negative { "-" } else { "" };
    let mut format = q.format;
    let mut integer = None;
    if format == Format::BinarySI {
        // |q| < 1024 shows as DecimalSI; so does a value with a fraction.
        let int = if q.scale >= 0 {
            pow10(q.scale as u32).and_then(|m| q.mantissa.checked_mul(m))
        } else {
            let d = pow10((-q.scale) as u32).unwrap_or(u128::MAX);
            q.mantissa.is_multiple_of(d).then(|| q.mantissa / d)
        };
        match int {
            Some(i) if i >= 1024 => integer = Some(i),
            _ => format = Format::DecimalSI,
        }
    }
    if let Some(mut v) = integer {
        let mut exp = 0;
        while v % 1024 == 0 && exp < 6 {
            v /= 1024;
            exp += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
        return format!("{sign}{v}{suffix}");
    }
    // Move factors of ten into the exponent, then lower it to a multiple of three.
    let (mut m, mut e) = (q.mantissa, q.scale);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    while e.rem_euclid(3) != 0 {
        m *= 10;
        e -= 1;
    }
    let suffix = match format {
        Format::DecimalExponent if e == 0 => String::new(),
        Format::DecimalExponent => format!("e{e}"),
        _ => match e {
            -9 => "n".into(),
            -6 => "u".into(),
            -3 => "m".into(),
            3 => "k".into(),
            6 => "M".into(),
            9 => "G".into(),
            12 => "T".into(),
            15 => "P".into(),
            18 => "E".into(),
            // Kubernetes writes no suffix for an exponent it has no name for.
            _ => String::new(),
        },
    };
    format!("{sign}{m}{suffix}")
}

/// The stored (canonical) form of a quantity given as text, e.g. `0.5` → `500m`, `1024Mi` → `1Gi`.
///
/// Leading and trailing whitespace is ignored, as `Quantity.UnmarshalJSON` does.
pub fn canonicalize(text: &str) -> Result<String, QuantityError> {
    let (q, keep) = parse(text.trim())?;
    Ok(if keep {
        text.trim().to_string()
    } else {
        canonical(&q)
    })
}

/// Like [`canonicalize`] for a value of a `ResourceList` (requests, limits, quota), which
/// defaulting also rounds up to milli-units (`SetDefaults_ResourceList`: `100u` → `1m`).
pub fn canonicalize_resource(text: &str) -> Result<String, QuantityError> {
    let (mut q, keep) = parse(text.trim())?;
    if q.scale >= -3 {
        return Ok(if keep {
            text.trim().to_string()
        } else {
            canonical(&q)
        });
    }
    let d = pow10((-3 - q.scale) as u32).unwrap_or(u128::MAX);
    q.mantissa = q.mantissa.div_ceil(d);
    q.scale = -3;
    Ok(canonical(&q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_match_kubernetes() {
        for (given, stored) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("500m", "500m"),
            ("1", "1"),
            ("1.5", "1500m"),
            ("2", "2"),
            ("100m", "100m"),
            ("0.1", "100m"),
            ("1024Mi", "1Gi"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("1000Mi", "1000Mi"),
            ("1000M", "1G"),
            ("1G", "1G"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
            ("1Ki", "1Ki"),
            ("2048Ki", "2Mi"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("1.1Ki", "1126400m"),
            ("1e3", "1e3"),
            ("1e1", "10"),
            ("1500", "1500"),
            ("1.5k", "1500"),
            ("0", "0"),
            ("0Gi", "0"),
            ("0m", "0"),
            ("-1", "-1"),
            ("-0.5", "-500m"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1.0001m", "1000100n"),
            ("5G", "5G"),
            ("5000M", "5G"),
            (" 250m ", "250m"),
            ("+500m", "+500m"),
            ("1.", "1."),
        ] {
            assert_eq!(canonicalize(given).as_deref(), Ok(stored), "{given}");
        }
    }

    #[test]
    fn resource_lists_round_up_to_milli_units() {
        assert_eq!(canonicalize_resource("100u").as_deref(), Ok("1m"));
        assert_eq!(canonicalize_resource("1.0001m").as_deref(), Ok("2m"));
        assert_eq!(canonicalize_resource("0.5").as_deref(), Ok("500m"));
        assert_eq!(canonicalize_resource("1Gi").as_deref(), Ok("1Gi"));
    }

    #[test]
    fn malformed_quantities_are_refused_with_apimachinery_errors() {
        assert_eq!(canonicalize("512mb"), Err(QuantityError::Format));
        assert_eq!(canonicalize("abc"), Err(QuantityError::Format));
        assert_eq!(canonicalize(""), Err(QuantityError::Format));
        assert_eq!(canonicalize("1Xi"), Err(QuantityError::Format));
        assert_eq!(canonicalize("1Mk"), Err(QuantityError::Suffix));
        assert_eq!(canonicalize("1.2.3"), Err(QuantityError::Format));
    }
}
