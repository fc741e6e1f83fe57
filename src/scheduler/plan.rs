//! When an invoker is due, as pure functions of explicit timestamps (Unix
//! milliseconds), so every rule here is tested without a clock.

use std::str::FromStr;

use chrono::{DateTime, Local, TimeZone};
use croner::Cron;

/// The zone crontab expressions are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The server's local zone (the default).
    Local,
    Named(chrono_tz::Tz),
}

impl FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Zone, String> {
        if s.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        s.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!(
                "unknown time zone {s:?} (use an IANA name such as Asia/Shanghai, or \"local\")"
            )
        })
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Local => f.write_str("local"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Runs once at this time.
    Once(i64),
    /// Runs at each match of a crontab expression.
    Recurrence(Box<Cron>),
}

/// Parses TAT's crontab: five fields (minute hour day month weekday), or
/// six with a leading seconds field (a drover extension).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(format!(
            "{expr:?} has {fields} fields; a crontab expression has 5 (or 6 with seconds)"
        ));
    }
    Cron::from_str(expr.trim())
        .map_err(|e| format!("{expr:?} is not a valid crontab expression: {e}"))
}

fn next_in<Tz: TimeZone>(cron: &Cron, tz: &Tz, after_ms: i64) -> Option<i64> {
    let start = DateTime::from_timestamp_millis(after_ms)?.with_timezone(tz);
    cron.find_next_occurrence(&start, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn last_in<Tz: TimeZone>(cron: &Cron, tz: &Tz, upto_ms: i64) -> Option<i64> {
    let start = DateTime::from_timestamp_millis(upto_ms)?.with_timezone(tz);
    cron.find_previous_occurrence(&start, true)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl Schedule {
    /// The first trigger strictly after `after_ms`, if any.
    pub fn next_after(&self, zone: Zone, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Once(at) => (*at > after_ms).then_some(*at),
            Schedule::Recurrence(c) => match zone {
                Zone::Local => next_in(c, &Local, after_ms),
                Zone::Named(tz) => next_in(c, &tz, after_ms),
            },
        }
    }

    /// The latest trigger at or before `upto_ms`, if any.
    fn last_upto(&self, zone: Zone, upto_ms: i64) -> Option<i64> {
        match self {
            Schedule::Once(at) => (*at <= upto_ms).then_some(*at),
            Schedule::Recurrence(c) => match zone {
                Zone::Local => last_in(c, &Local, upto_ms),
                Zone::Named(tz) => last_in(c, &tz, upto_ms),
            },
        }
    }
}

/// What the scheduler does with one invoker now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Run the trigger scheduled at `at`; `late` when it fell before the
    /// server started (a missed trigger caught up within the grace window).
    Fire { at: i64, late: bool },
    /// The trigger scheduled at `at` fell longer ago than the grace window:
    /// record it as missed, run nothing.
    Missed { at: i64 },
    /// Nothing due before `at`.
    Wait { at: i64 },
    /// Nothing will ever be due (a ONCE invoker that has run).
    Never,
}

/// Decides for a schedule whose triggers up to `last_fired_ms` are handled.
/// Several triggers missed in a row collapse into the latest one: a
/// schedule runs at most once to catch up, never once per missed trigger.
pub fn decide(
    s: &Schedule,
    zone: Zone,
    last_fired_ms: i64,
    now_ms: i64,
    grace_ms: i64,
    started_ms: i64,
) -> Due {
    let Some(next) = s.next_after(zone, last_fired_ms) else {
        return Due::Never;
    };
    if next > now_ms {
        return Due::Wait { at: next };
    }
    let at = s.last_upto(zone, now_ms).unwrap_or(next).max(next);
    if now_ms - at > grace_ms {
        Due::Missed { at }
    } else {
        Due::Fire {
            at,
            late: at < started_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::parse_iso;

    fn t(s: &str) -> i64 {
        parse_iso(s).unwrap()
    }

    fn cron(e: &str) -> Schedule {
        Schedule::Recurrence(Box::new(parse_cron(e).unwrap()))
    }

    #[test]
    fn cron_is_read_in_the_configured_zone() {
        let shanghai: Zone = "Asia/Shanghai".parse().unwrap();
        let utc: Zone = "UTC".parse().unwrap();
        let s = cron("0 9 * * *");
        let from = t("2024-03-01T00:30:00Z");
        // 09:00 in Beijing is 01:00 UTC.
        assert_eq!(
            s.next_after(shanghai, from),
            Some(t("2024-03-01T01:00:00Z"))
        );
        assert_eq!(s.next_after(utc, from), Some(t("2024-03-01T09:00:00Z")));
        assert_eq!("local".parse::<Zone>().unwrap(), Zone::Local);
        assert!("Mars/Olympus".parse::<Zone>().is_err());
        // DST: New York's 09:00 is 14:00 UTC in winter, 13:00 in summer.
        let ny: Zone = "America/New_York".parse().unwrap();
        assert_eq!(
            s.next_after(ny, t("2024-01-10T00:00:00Z")),
            Some(t("2024-01-10T14:00:00Z"))
        );
        assert_eq!(
            s.next_after(ny, t("2024-07-10T00:00:00Z")),
            Some(t("2024-07-10T13:00:00Z"))
        );
    }

    #[test]
    fn crontab_fields_are_checked() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("*/2 * * * * *").is_ok());
        assert!(parse_cron("* * * *").is_err());
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("every day").is_err());
        let s = cron("*/2 * * * * *");
        assert_eq!(
            s.next_after(Zone::Named(chrono_tz::UTC), t("2024-01-01T00:00:00Z")),
            Some(t("2024-01-01T00:00:02Z"))
        );
    }

    #[test]
    fn once_runs_once() {
        let at = t("2024-05-01T10:00:00Z");
        let s = Schedule::Once(at);
        let z = Zone::Local;
        assert_eq!(s.next_after(z, at - 1), Some(at));
        assert_eq!(s.next_after(z, at), None);
        assert_eq!(
            decide(&s, z, at - 5_000, at - 10, 300_000, 0),
            Due::Wait { at }
        );
        assert_eq!(
            decide(&s, z, at - 5_000, at, 300_000, 0),
            Due::Fire { at, late: false }
        );
        assert_eq!(decide(&s, z, at, at + 1, 300_000, 0), Due::Never);
    }

    #[test]
    fn missed_triggers_within_grace_run_once_late_and_beyond_are_missed() {
        let at = t("2024-05-01T10:00:00Z");
        let s = Schedule::Once(at);
        let z = Zone::Local;
        let started = at + 60_000;
        assert_eq!(
            decide(&s, z, at - 1_000, started, 300_000, started),
            Due::Fire { at, late: true }
        );
        assert_eq!(
            decide(&s, z, at - 1_000, at + 301_000, 300_000, at + 301_000),
            Due::Missed { at }
        );
        // A recurrence missed many times catches up once, at its latest trigger.
        let every_min = cron("* * * * *");
        let utc = Zone::Named(chrono_tz::UTC);
        let last = t("2024-05-01T09:00:00Z");
        let now = t("2024-05-01T10:00:30Z");
        assert_eq!(
            decide(&every_min, utc, last, now, 300_000, now),
            Due::Fire {
                at: t("2024-05-01T10:00:00Z"),
                late: true
            }
        );
        let hourly = cron("0 * * * *");
        assert_eq!(
            decide(&hourly, utc, last, t("2024-05-01T10:20:00Z"), 300_000, now),
            Due::Missed {
                at: t("2024-05-01T10:00:00Z")
            }
        );
        assert_eq!(
            decide(
                &hourly,
                utc,
                t("2024-05-01T10:00:00Z"),
                t("2024-05-01T10:20:00Z"),
                300_000,
                now
            ),
            Due::Wait {
                at: t("2024-05-01T11:00:00Z")
            }
        );
    }
}
