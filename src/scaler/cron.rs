//! Cron expressions for scheduled actions: five fields `minute hour day-of-month month
//! day-of-week` with `*`, lists, ranges and steps (`*/15`, `1-5`, `0,30`), month and weekday
//! names, and time zones as fixed offsets from UTC. As in Vixie cron, when both day fields
//! are restricted a day matching either one matches.

use std::fmt;
use std::str::FromStr;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

/// A time zone: a fixed offset from UTC in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone {
    /// Seconds east of UTC.
    pub offset_secs: i32,
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<TimeZone, String> {
        let bad = || format!("`{s}` is not a time zone (use `UTC` or an offset such as `+09:00`)");
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Ok(TimeZone { offset_secs: 0 });
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if h > 14 || m > 59 {
            return Err(bad());
        }
        Ok(TimeZone {
            offset_secs: sign * (h * 3600 + m * 60),
        })
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + name_base);
    }
    match s.parse::<u32>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not in {lo}..={hi}")),
    }
}

/// One field as a bit set; `true` in the second place when it is `*` (or `?`).
fn field(s: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st
                    .parse()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| format!("step `{st}` must be a number above 0"))?;
                (r, st)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(a, lo, hi, names, name_base)?,
                value(b, lo, hi, names, name_base)?,
            )
        } else {
            let a = value(range, lo, hi, names, name_base)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(format!("range `{range}` is empty"));
        }
        for v in (a..=b).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok((bits, s == "*" || s == "?"))
}

impl FromStr for Cron {
    type Err = String;
    fn from_str(s: &str) -> Result<Cron, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "`{s}` needs five fields: minute hour day-of-month month day-of-week"
            ));
        }
        let at = |what: &str, r: Result<(u64, bool), String>| {
            r.map_err(|e| format!("`{s}`: {what}: {e}"))
        };
        let (minutes, _) = at("minute", field(f[0], 0, 59, &[], 0))?;
        let (hours, _) = at("hour", field(f[1], 0, 23, &[], 0))?;
        let (days, days_any) = at("day of month", field(f[2], 1, 31, &[], 0))?;
        let (months, _) = at("month", field(f[3], 1, 12, &MONTHS, 1))?;
        let (mut weekdays, weekdays_any) = at("day of week", field(f[4], 0, 7, &WEEKDAYS, 0))?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Cron {
            text: s.to_string(),
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_any,
            weekdays_any,
        })
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31) (proleptic Gregorian).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Cron {
    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil(days);
        if self.months & (1 << month) == 0 {
            return false;
        }
        let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let d = self.days & (1 << day) != 0;
        let w = self.weekdays & (1 << weekday) != 0;
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => d,
            (true, false) => w,
            (false, false) => d || w,
        }
    }

    /// The first matching minute strictly after `unix_secs` (UTC seconds), in `zone`, within
    /// about five years; `None` if there is none (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, unix_secs: i64, zone: TimeZone) -> Option<i64> {
        let offset = i64::from(zone.offset_secs);
        let mut t = (unix_secs + offset).div_euclid(60) * 60 + 60; // local, next whole minute
        let limit = t + 5 * 366 * 86_400;
        while t < limit {
            let days = t.div_euclid(86_400);
            if !self.day_matches(days) {
                t = (days + 1) * 86_400;
                continue;
            }
            let hour = t.rem_euclid(86_400) / 3600;
            if self.hours & (1 << hour) == 0 {
                t = t.div_euclid(3600) * 3600 + 3600;
                continue;
            }
            let minute = t.rem_euclid(3600) / 60;
            if self.minutes & (1 << minute) != 0 {
                return Some(t - offset);
            }
            t += 60;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-04 (a Monday) 10:17:30 UTC.
    const MON: i64 = 1_709_547_450;

    fn next(expr: &str, from: i64, zone: &str) -> i64 {
        expr.parse::<Cron>()
            .unwrap()
            .next_after(from, zone.parse().unwrap())
            .unwrap()
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(MON / 86_400), (2024, 3, 4));
        assert_eq!(civil(19_782), (2024, 2, 29));
    }

    #[test]
    fn next_matching_minutes() {
        assert_eq!(next("* * * * *", MON, "UTC"), MON - 30 + 60);
        assert_eq!(
            next("*/15 * * * *", MON, "UTC"),
            MON - 17 * 60 - 30 + 30 * 60
        );
        // 09:00 on weekdays: Monday 10:17 -> Tuesday 09:00.
        let tue_9 = (MON / 86_400 + 1) * 86_400 + 9 * 3600;
        assert_eq!(next("0 9 * * mon-fri", MON, "UTC"), tue_9);
        // The same in UTC+09:00 is 00:00 UTC Tuesday.
        assert_eq!(next("0 9 * * 1-5", MON, "+09:00"), tue_9 - 9 * 3600);
        // Saturday and Sunday (7) only.
        let sat = (MON / 86_400 + 5) * 86_400;
        assert_eq!(next("0 0 * * 6,7", MON, "UTC"), sat);
        // Either day field matches when both are restricted: the 5th (Tue) or any Monday.
        assert_eq!(next("0 0 5 * 1", MON, "UTC"), (MON / 86_400 + 1) * 86_400);
        assert_eq!(next("30 2 1 jan *", MON, "UTC"), 1_735_698_600);
    }

    #[test]
    fn rejects_bad_expressions() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "5-1 * * * *",
        ] {
            assert!(bad.parse::<Cron>().is_err(), "{bad}");
        }
        assert!(
            "0 0 31 2 *"
                .parse::<Cron>()
                .unwrap()
                .next_after(MON, TimeZone { offset_secs: 0 })
                .is_none()
        );
        for bad in ["Asia/Seoul", "+25:00", "9"] {
            assert!(bad.parse::<TimeZone>().is_err(), "{bad}");
        }
        assert_eq!(
            "-05:30".parse::<TimeZone>().unwrap().offset_secs,
            -(5 * 3600 + 1800)
        );
    }
}
