//! Go's `time.ParseDuration` for non-negative durations, which upstream's flags (`720h0m0s`),
//! kubectl's `--request-timeout` and GitOps intervals (`5m`) are all written in. One parser,
//! so the three accept the same texts and none can panic on an absurd value.

use std::time::Duration;

/// A text that is not a Go duration; the message is Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// A number without a unit (`5`).
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// A unit Go does not know (`5x`).
    #[error("time: unknown unit \"{unit}\" in duration \"{text}\"")]
    UnknownUnit {
        /// The unit.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// Anything else: empty, no number, negative, too large.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
}

/// Parses `1h30m`, `720h0m0s`, `1.5s`, `500ms`, `+5m` or `0`.
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit(text.to_string()))?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    text: text.to_string(),
                });
            }
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = |t: &str| parse_go_duration(t).unwrap();
        assert_eq!(ok("720h0m0s"), Duration::from_secs(720 * 3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("+500ms"), Duration::from_millis(500));
        assert_eq!(ok("2µs"), Duration::from_micros(2));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(
            parse_go_duration("5").unwrap_err().to_string(),
            "time: missing unit in duration \"5\""
        );
        assert_eq!(
            parse_go_duration("5x").unwrap_err().to_string(),
            "time: unknown unit \"x\" in duration \"5x\""
        );
        for bad in ["", "-5s", "h", ".s", "1e400h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        // Too large for a Duration: an error, not a panic.
        let huge = format!("{}h", "9".repeat(30));
        assert!(matches!(
            parse_go_duration(&huge),
            Err(DurationError::Invalid(_))
        ));
    }
}
