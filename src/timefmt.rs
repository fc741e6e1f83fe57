//! Time in the two forms drover uses: Unix milliseconds inside, and TAT's
//! `YYYY-MM-DDThh:mm:ssZ` (UTC) on the wire.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix microseconds: stage stamps that are compared across processes.
pub fn now_us() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// Formats Unix milliseconds as `2024-01-02T03:04:05Z`; 0 or negative → "".
pub fn iso(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let Ok(t) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

/// Formats Unix milliseconds as CAM does: `2024-01-02 03:04:05` (UTC); 0 → "".
pub fn cam(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let Ok(t) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).unwrap_or_default()
}

/// Parses an RFC 3339 time into Unix milliseconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(iso(0), "");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(cam(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(parse_iso("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_iso("yesterday"), None);
    }
}
