//! Points in time as users type them (`--since 30m`, `--since 2026-11-01`).

use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};

/// `30m`, `24h`, `7d` (ago), or an ISO date / date-time (UTC).
pub fn parse_since(s: &str, now: SystemTime) -> Result<SystemTime> {
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .with_context(|| format!("--since {s} reaches before 1970"));
    }
    let iso = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = humantime::parse_rfc3339_weak(iso.trim_end_matches('Z')).map_err(|_| {
        anyhow!("--since {s:?} is neither a duration (30m, 24h, 7d) nor an ISO date (2026-11-01, 2026-11-01T08:00:00)")
    })?;
    if t > now {
        bail!("--since {s} is in the future");
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_dates() {
        let now = humantime::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        assert_eq!(
            parse_since("30m", now).unwrap(),
            now - Duration::from_secs(1800)
        );
        assert_eq!(
            parse_since("7d", now).unwrap(),
            now - Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            humantime::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()
        );
        assert!(format!("{}", parse_since("2027-01-01", now).unwrap_err()).contains("future"));
        assert!(format!("{}", parse_since("yesterday", now).unwrap_err()).contains("neither"));
    }
}
