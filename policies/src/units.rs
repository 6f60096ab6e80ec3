//! Durations ("500ms", "5s", "2m", "1h") and byte sizes ("512B", "64KiB", "1MB"),
//! for the policy file and for pgcache's command line alike, so that a value
//! means the same wherever an operator writes it.
//!
//! Durations take exactly one whole number and one unit: `ms`, `s`, `m`, `h`
//! (lower case, so `m` can never be misread as months). Combinations such as
//! "1h30m" are not accepted; write "90m".
//!
//! Sizes take a whole number and an optional unit, matched without regard to
//! case:
//! - no unit or `B`: bytes;
//! - `KiB`, `MiB`, `GiB`, `TiB`: powers of 1024;
//! - `kB`/`KB`, `MB`, `GB`, `TB`: powers of 1000 (SI).
//!
//! Note that postgresql.conf reads `MB` as 1024²; here the binary units are the
//! ones to use for that, and SI units mean what they say. A space between
//! number and unit is allowed ("64 KiB"). Negative values, fractions, unknown
//! units and values beyond 2^64-1 bytes are refused with a message saying so.

use std::time::Duration;

use thiserror::Error;

/// Why a duration or size string was refused. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    #[error("invalid duration {0:?}: expected a number followed by ms, s, m or h")]
    DurationSyntax(String),
    #[error("invalid duration {0:?}: missing unit; expected a number followed by ms, s, m or h")]
    DurationNoUnit(String),
    #[error("invalid duration {0:?}: durations cannot be negative")]
    DurationNegative(String),
    #[error("invalid duration {0:?}: fractions are not supported; use a smaller unit (\"1500ms\", not \"1.5s\")")]
    DurationFraction(String),
    #[error("invalid duration {0:?}: too large")]
    DurationOverflow(String),
    #[error("invalid size {0:?}: expected a whole number of bytes, optionally followed by a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)")]
    SizeSyntax(String),
    #[error("invalid size {input:?}: unknown unit {unit:?}; expected B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)")]
    SizeUnit { input: String, unit: String },
    #[error("invalid size {0:?}: sizes cannot be negative")]
    SizeNegative(String),
    #[error("invalid size {0:?}: fractions are not supported; use a smaller unit (\"1536MiB\", not \"1.5GiB\")")]
    SizeFraction(String),
    #[error("invalid size {0:?}: larger than the maximum of 18446744073709551615 bytes")]
    SizeOverflow(String),
}

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// Splits "  12 KiB " into ("12", "KiB"); the number part is leading ASCII digits.
fn split_number(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

/// Parses "500ms", "5s", "2m" or "1h".
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let s = input.trim();
    let err = |f: fn(String) -> UnitError| f(input.to_owned());
    if s.starts_with('-') {
        return Err(err(UnitError::DurationNegative));
    }
    let (digits, unit) = split_number(s.strip_prefix('+').unwrap_or(s));
    if digits.is_empty() {
        return Err(err(UnitError::DurationSyntax));
    }
    if unit.starts_with(['.', ',']) {
        return Err(err(UnitError::DurationFraction));
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(err(UnitError::DurationNoUnit)),
        _ => return Err(err(UnitError::DurationSyntax)),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| err(UnitError::DurationOverflow))?;
    let millis = n
        .checked_mul(millis_per_unit)
        .ok_or_else(|| err(UnitError::DurationOverflow))?;
    Ok(Duration::from_millis(millis))
}

/// Parses "512", "512B", "64KiB", "1MiB", "1GiB", "10MB", ...
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let s = input.trim();
    if s.starts_with('-') {
        return Err(UnitError::SizeNegative(input.to_owned()));
    }
    let (digits, unit) = split_number(s.strip_prefix('+').unwrap_or(s));
    if digits.is_empty() {
        return Err(UnitError::SizeSyntax(input.to_owned()));
    }
    if unit.starts_with(['.', ',']) {
        return Err(UnitError::SizeFraction(input.to_owned()));
    }
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => TIB,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(UnitError::SizeUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| UnitError::SizeOverflow(input.to_owned()))?;
    n.checked_mul(multiplier)
        .ok_or_else(|| UnitError::SizeOverflow(input.to_owned()))
}

/// Formats a duration in the largest unit that represents it exactly, in the
/// syntax [`parse_duration`] reads back ("90m", "1500ms").
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() % 1_000_000 != 0 {
        // Not produced by a policy file; keep the precision rather than lie.
        return format!("{d:?}");
    }
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// Formats a size in the largest unit that represents it exactly, in the
/// syntax [`parse_size`] reads back ("1MiB", "5MB", "1000B").
pub fn format_size(n: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (TIB, "TiB"),
        (GIB, "GiB"),
        (MIB, "MiB"),
        (KIB, "KiB"),
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    if n == 0 {
        return "0B".to_owned();
    }
    for (m, unit) in UNITS {
        if n % m == 0 {
            return format!("{}{unit}", n / m);
        }
    }
    format!("{n}B")
}

/// Serde helpers so listings show "5s" and "1MiB" rather than raw numbers.
pub(crate) mod ser {
    use std::time::Duration;

    use serde::Serializer;

    pub(crate) fn opt_duration<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn opt_size<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_str(&super::format_size(*n)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("+5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_errors_say_what_is_accepted() {
        let msg = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(
            msg("5 seconds"),
            r#"invalid duration "5 seconds": expected a number followed by ms, s, m or h"#
        );
        assert_eq!(
            msg("5"),
            r#"invalid duration "5": missing unit; expected a number followed by ms, s, m or h"#
        );
        assert_eq!(
            msg("-5s"),
            r#"invalid duration "-5s": durations cannot be negative"#
        );
        assert!(msg("1.5s").contains("fractions are not supported"));
        assert!(msg("").contains("expected a number followed by ms, s, m or h"));
        assert!(msg("s").contains("expected a number"));
        assert!(msg("5S").contains("expected a number followed by ms, s, m or h"));
        assert!(msg("1h30m").contains("expected a number followed by ms, s, m or h"));
        assert_eq!(
            msg("99999999999999999999s"),
            r#"invalid duration "99999999999999999999s": too large"#
        );
        assert!(msg("18446744073709551615h").ends_with("too large"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("512b"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("64 KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("1kB"), Ok(1_000));
        assert_eq!(parse_size("1KB"), Ok(1_000));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn size_errors_say_what_is_accepted() {
        let msg = |s: &str| parse_size(s).unwrap_err().to_string();
        assert_eq!(
            msg("-1MiB"),
            r#"invalid size "-1MiB": sizes cannot be negative"#
        );
        assert_eq!(
            msg("1MiBs"),
            r#"invalid size "1MiBs": unknown unit "MiBs"; expected B, KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)"#
        );
        assert!(msg("1M").contains(r#"unknown unit "M""#));
        assert!(msg("MiB").contains("expected a whole number of bytes"));
        assert!(msg("").contains("expected a whole number of bytes"));
        assert!(msg("1.5GiB").contains("fractions are not supported"));
        assert!(msg("18446744073709551616").contains("larger than the maximum"));
        assert!(msg("16777216TiB").contains("larger than the maximum"));
        assert!(msg("99999999999999999999999").contains("larger than the maximum"));
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["500ms", "5s", "90m", "1h", "1500ms", "25h"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        for s in ["512B", "64KiB", "1MiB", "1GiB", "5MB", "1kB", "3TiB"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s, "{s}");
        }
        assert_eq!(format_size(1001), "1001B");
        assert_eq!(format_size(0), "0B");
    }
}
