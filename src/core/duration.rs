//! Durations as the CLI and the chart write them (`90s`, `15m`, `12h`, `30d`, `1h30m`).

use std::time::Duration;

/// Parses a duration such as `90s`, `15m`, `12h`, `30d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h or d)")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        number.clear();
        total += Duration::from_secs(n.saturating_mul(unit));
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?}: the last number has no unit (s, m, h or d)"
        ));
    }
    if total.is_zero() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_up_and_mistakes_are_named() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::from_secs(172_800)));
        for bad in ["", "10", "5x", "m", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
