//! Serde for byte counts written as a number (`1048576`) or with a unit (`"512MiB"`,
//! `"10GiB"`, `"1.5GB"`); serialised back in the largest whole binary unit.

use serde::{Deserialize, Deserializer, Serializer, de};

/// Whole binary units read best (`"10GiB"`); anything else stays a byte count.
pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if *value > 0 && value.is_multiple_of(size) {
            return s.serialize_str(&format!("{}{unit}", value / size));
        }
    }
    s.serialize_u64(*value)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(t) => parse(&t).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid size {t:?}: use bytes or a number with KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            ))
        }),
    }
}

pub fn parse(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = number * factor as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_with_and_without_units_parse() {
        assert_eq!(parse("1024"), Some(1024));
        assert_eq!(parse("512MiB"), Some(512 << 20));
        assert_eq!(parse("10 GiB"), Some(10 << 30));
        assert_eq!(parse("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("5 parsecs"), None);
    }
}
