//! The organisation's time zone: every time a person reads (pages, mails) is shown in
//! it, with the zone named, and every time an officer types (appointment slots) is read
//! in it. Stored times stay Unix seconds (UTC).
//!
//! The zone is an IANA name from `[portal] time_zone`, else the system's zone, else UTC.
//! The time zone database is built in (jiff's bundled copy), so a container without
//! tzdata still knows `Europe/Berlin`; a system zone database, where present, wins.

use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The organisation's time zone.
#[derive(Clone, Debug)]
pub struct OrgZone {
    tz: jiff::tz::TimeZone,
    name: String,
}

/// A moment as people in the organisation read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// The moment with the zone's offset at that moment.
    pub at: OffsetDateTime,
    /// The zone's abbreviation at that moment (`CET`, `CEST`, `UTC`), or the offset
    /// written `UTC+03:00` where the zone has no alphabetic abbreviation.
    pub abbreviation: String,
    /// The zone's IANA name (`Europe/Berlin`, `UTC`).
    pub zone: String,
}

impl PartialEq for OrgZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for OrgZone {}

impl OrgZone {
    /// UTC.
    pub fn utc() -> Self {
        Self { tz: jiff::tz::TimeZone::UTC, name: "UTC".into() }
    }

    /// The zone named `name` (IANA, e.g. `Europe/Berlin`).
    pub fn named(name: &str) -> Result<Self, String> {
        let name = name.trim();
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| {
            format!("portal.time_zone {name:?} is not a time zone of the IANA database (e.g. Europe/Berlin, UTC)")
        })?;
        Ok(Self::with_name(tz.iana_name().unwrap_or(name).to_string(), tz))
    }

    /// `Etc/UTC`, `Universal`, `Zulu` and the like are all called `UTC`.
    fn with_name(name: String, tz: jiff::tz::TimeZone) -> Self {
        const UTC_ALIASES: [&str; 8] =
            ["UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"];
        if UTC_ALIASES.contains(&name.as_str()) {
            return Self::utc();
        }
        Self { tz, name }
    }

    /// The system's zone (`TZ`, `/etc/localtime`), UTC where it has none. A zone
    /// without an IANA name (a copied `/etc/localtime`, a POSIX `TZ` string) is kept,
    /// with its rules, and called "local time".
    pub fn system() -> Self {
        match jiff::tz::TimeZone::try_system() {
            Ok(tz) => match tz.iana_name().map(str::to_string) {
                Some(name) => Self::with_name(name, tz),
                None => Self { tz, name: "local time".into() },
            },
            Err(_) => Self::utc(),
        }
    }

    /// `[portal] time_zone` when set, else the system's zone.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, String> {
        match setting {
            Some(name) => Self::named(name),
            None => Ok(Self::system()),
        }
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `unix` (seconds) as people here read it; `None` outside the years 0..=9999.
    pub fn local(&self, unix: i64) -> Option<LocalTime> {
        let ts = jiff::Timestamp::from_second(unix).ok()?;
        let info = self.tz.to_offset_info(ts);
        let offset = UtcOffset::from_whole_seconds(info.offset().seconds()).ok()?;
        let at = OffsetDateTime::from_unix_timestamp(unix).ok()?.to_offset(offset);
        let abbreviation = match info.abbreviation() {
            a if a.starts_with(|c: char| c.is_ascii_alphabetic()) => a.to_string(),
            _ => format_offset(offset),
        };
        Some(LocalTime { at, abbreviation, zone: self.name.clone() })
    }

    /// `t` as people here read it (UTC, named so, outside the years jiff knows).
    pub fn at(&self, t: OffsetDateTime) -> LocalTime {
        self.local(t.unix_timestamp()).unwrap_or_else(|| LocalTime::utc(t))
    }

    /// The moment a wall-clock time here names: in a change to summer time the hour
    /// that does not exist is read as the hour after, in the change back the earlier of
    /// the two (as calendars do). `None` outside the years jiff knows.
    pub fn unix_of(&self, wall: PrimitiveDateTime) -> Option<i64> {
        Some(self.tz.to_ambiguous_timestamp(civil(wall)?).compatible().ok()?.as_second())
    }

    /// The moment a wall-clock time here names, `None` when the time does not exist here
    /// (skipped when summer time begins) or lies outside the years jiff knows. For what
    /// people type: an appointment at 02:30 on the night the clocks go forward is refused
    /// rather than moved.
    pub fn existing_unix_of(&self, wall: PrimitiveDateTime) -> Option<i64> {
        let dt = civil(wall)?;
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
            return None;
        }
        Some(ambiguous.compatible().ok()?.as_second())
    }

    /// The local calendar day of `unix`.
    pub fn date_of(&self, unix: i64) -> Option<Date> {
        self.local(unix).map(|l| l.at.date())
    }

    /// The first and the last second of the local day `day` (23, 24 or 25 hours long).
    pub fn day_bounds(&self, day: Date) -> Option<(i64, i64)> {
        let start = self.unix_of(day.midnight())?;
        let end = self.unix_of(day.next_day()?.midnight())? - 1;
        Some((start, end))
    }
}

impl LocalTime {
    /// `t` in UTC.
    pub fn utc(t: OffsetDateTime) -> Self {
        Self { at: t.to_offset(UtcOffset::UTC), abbreviation: "UTC".into(), zone: "UTC".into() }
    }

    /// `2026-12-07 09:00 CET`.
    pub fn iso_minutes(&self) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        let text = self.at.format(&format).unwrap_or_else(|_| self.at.to_string());
        format!("{text} {}", self.abbreviation)
    }

    /// `2026-12-07`.
    pub fn iso_date(&self) -> String {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        self.at.format(&format).unwrap_or_else(|_| self.at.date().to_string())
    }
}

/// A `time` wall-clock time as jiff's.
fn civil(wall: PrimitiveDateTime) -> Option<jiff::civil::DateTime> {
    jiff::civil::DateTime::new(
        i16::try_from(wall.year()).ok()?,
        i8::try_from(u8::from(wall.month())).ok()?,
        i8::try_from(wall.day()).ok()?,
        i8::try_from(wall.hour()).ok()?,
        i8::try_from(wall.minute()).ok()?,
        i8::try_from(wall.second()).ok()?,
        0,
    )
    .ok()
}

/// `UTC`, `UTC+01:00`, `UTC-03:30`.
fn format_offset(offset: UtcOffset) -> String {
    if offset.is_utc() {
        return "UTC".into();
    }
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    format!("UTC{}", offset.format(&format).unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn berlin_has_winter_and_summer_time_named() {
        let berlin = OrgZone::named("Europe/Berlin").unwrap();
        let winter = berlin.local(datetime!(2026-12-07 08:00 UTC).unix_timestamp()).unwrap();
        assert_eq!(winter.iso_minutes(), "2026-12-07 09:00 CET");
        assert_eq!(winter.zone, "Europe/Berlin");
        let summer = berlin.local(datetime!(2026-06-30 08:05 UTC).unix_timestamp()).unwrap();
        assert_eq!(summer.iso_minutes(), "2026-06-30 10:05 CEST");
        assert_eq!(summer.at.offset(), UtcOffset::from_hms(2, 0, 0).unwrap());
    }

    #[test]
    fn wall_clock_times_read_in_the_zone_and_days_have_their_length() {
        let berlin = OrgZone::named("Europe/Berlin").unwrap();
        let nine = berlin.unix_of(datetime!(2026-12-07 09:00)).unwrap();
        assert_eq!(nine, datetime!(2026-12-07 08:00 UTC).unix_timestamp());
        // 2026-03-29 02:30 does not exist in Berlin: read as 03:30 CEST (01:30 UTC).
        let gap = berlin.unix_of(datetime!(2026-03-29 02:30)).unwrap();
        assert_eq!(gap, datetime!(2026-03-29 01:30 UTC).unix_timestamp());
        // What people type in that gap is refused; the doubled hour in October is the
        // first one.
        assert_eq!(berlin.existing_unix_of(datetime!(2026-03-29 02:30)), None);
        assert_eq!(berlin.existing_unix_of(datetime!(2026-03-29 03:30)), Some(gap));
        let fold = berlin.existing_unix_of(datetime!(2026-10-25 02:30)).unwrap();
        assert_eq!(fold, datetime!(2026-10-25 00:30 UTC).unix_timestamp());
        let (start, end) = berlin.day_bounds(date!(2026 - 03 - 29)).unwrap();
        assert_eq!(end - start + 1, 23 * 3600);
        let (start, end) = berlin.day_bounds(date!(2026 - 10 - 25)).unwrap();
        assert_eq!(end - start + 1, 25 * 3600);
        assert_eq!(berlin.date_of(datetime!(2026-12-06 23:30 UTC).unix_timestamp()), Some(date!(2026 - 12 - 07)));
    }

    #[test]
    fn unknown_zones_are_refused_and_zones_without_letters_show_the_offset() {
        let err = OrgZone::named("Europe/Atlantis").unwrap_err();
        assert!(err.contains("Europe/Atlantis") && err.contains("IANA"), "{err}");
        let utc = OrgZone::named("UTC").unwrap();
        assert_eq!(utc.local(0).unwrap().iso_minutes(), "1970-01-01 00:00 UTC");
        let sao_paulo = OrgZone::named("America/Sao_Paulo").unwrap();
        let local = sao_paulo.local(datetime!(2026-12-07 12:00 UTC).unix_timestamp()).unwrap();
        assert_eq!(local.iso_minutes(), "2026-12-07 09:00 UTC-03:00");
        assert_eq!(OrgZone::from_setting(Some(" Europe/Berlin ")).unwrap().name(), "Europe/Berlin");
        assert_eq!(OrgZone::named("Etc/UTC").unwrap(), OrgZone::utc());
    }
}
