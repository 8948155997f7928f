//! RFC 3339 UTC timestamps, formatted without a date library (the civil
//! calendar conversion of Howard Hinnant's `civil_from_days`).

use crate::capture::Timestamp;
use std::fmt::Write;

/// Year, month, day from days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes `ts` as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` into `out`; with
/// `micros`, the fraction is always written with six digits.
pub fn write_rfc3339(out: &mut String, ts: Timestamp, micros: bool) {
    let secs = ts.0.div_euclid(1_000_000_000);
    let nanos = ts.0.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if micros {
        let _ = write!(out, ".{:06}", nanos / 1000);
    }
    out.push('Z');
}

/// `ts` as an RFC 3339 string with whole seconds.
pub fn rfc3339(ts: Timestamp) -> String {
    let mut s = String::with_capacity(20);
    write_rfc3339(&mut s, ts, false);
    s
}

/// `ts` as an RFC 3339 string with microseconds.
pub fn rfc3339_micros(ts: Timestamp) -> String {
    let mut s = String::with_capacity(27);
    write_rfc3339(&mut s, ts, true);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp::from_parts(1_505_296_800, 0)),
            "2017-09-13T10:00:00Z"
        );
        assert_eq!(
            rfc3339_micros(Timestamp::from_parts(951_782_400, 1_500)),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_parts(4_107_542_400, 0)),
            "2100-03-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_parts(-1, 0)),
            "1969-12-31T23:59:59Z"
        );
    }
}
