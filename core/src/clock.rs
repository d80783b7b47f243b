//! Monotonic time and the deadline arithmetic of a shutdown.
//!
//! A time is a plain `u64` of nanoseconds on `CLOCK_MONOTONIC` rather than `std::time::Instant`, because the
//! signal handler must record the moment a signal arrived in an atomic, and `Instant` cannot be stored in one.
//! `CLOCK_MONOTONIC` does not jump with the wall clock, so a laptop sleep or an NTP step cannot fire a deadline
//! early.
//!
//! Async-signal-safety: [`MonoTime::now`] calls only `clock_gettime`, which POSIX lists as async-signal-safe;
//! everything else here is integer arithmetic. All of it may run in a signal handler or on the watchdog thread.

use std::time::Duration;

/// An instant on `CLOCK_MONOTONIC`, in nanoseconds since an arbitrary origin (boot, on Linux).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonoTime(u64);

impl MonoTime {
  /// The current monotonic time.
  pub fn now() -> Self {
    let mut ts = libc::timespec {
      tv_sec: 0,
      tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported, so the call cannot
    // fail on the platforms we build for (and if it did, `ts` stays zeroed, which only makes deadlines early).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Self(
      (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64),
    )
  }

  /// Rebuilds a time stored with [`MonoTime::as_nanos`] (for example in an atomic).
  pub const fn from_nanos(nanos: u64) -> Self {
    Self(nanos)
  }

  /// The raw nanosecond count, for storing in an atomic.
  pub const fn as_nanos(self) -> u64 {
    self.0
  }

  /// This time moved forward by `by`, saturating instead of overflowing.
  pub fn saturating_add(self, by: Duration) -> Self {
    Self(self.0.saturating_add(duration_as_nanos(by)))
  }

  /// How long after `earlier` this time is; zero if it is not later.
  pub fn saturating_since(self, earlier: MonoTime) -> Duration {
    Duration::from_nanos(self.0.saturating_sub(earlier.0))
  }
}

/// The absolute end of a shutdown's budget, fixed the moment the shutdown begins.
///
/// It is computed once from the start time, never from "now + what is left", so late wake-ups cannot make it
/// drift.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
  start: MonoTime,
  at: MonoTime,
}

impl Deadline {
  /// A deadline `budget` after `start`.
  pub fn new(start: MonoTime, budget: Duration) -> Self {
    Self {
      start,
      at: start.saturating_add(budget),
    }
  }

  /// When the shutdown began (the signal handler's timestamp, or the `stop()` call).
  pub fn start(&self) -> MonoTime {
    self.start
  }

  /// The absolute instant the budget runs out.
  pub fn at(&self) -> MonoTime {
    self.at
  }

  /// The whole budget.
  pub fn budget(&self) -> Duration {
    self.at.saturating_since(self.start)
  }

  /// What is left of the budget at `now`; zero once it has passed.
  pub fn remaining(&self, now: MonoTime) -> Duration {
    self.at.saturating_since(now)
  }

  /// Whether the budget has run out at `now` (the deadline instant itself counts as passed).
  pub fn has_passed(&self, now: MonoTime) -> bool {
    now >= self.at
  }

  /// How late `now` is relative to the deadline; zero if it is not late.
  pub fn lateness(&self, now: MonoTime) -> Duration {
    now.saturating_since(self.at)
  }

  /// Time since the shutdown began.
  pub fn elapsed(&self, now: MonoTime) -> Duration {
    now.saturating_since(self.start)
  }
}

/// Converts a JavaScript millisecond count (possibly fractional) to a `Duration`.
///
/// Returns `None` for NaN, infinities and negative values: those are input errors the facade reports as
/// `ERR_OUT_OF_RANGE`, and the core refuses them too rather than guessing.
pub fn duration_from_millis(ms: f64) -> Option<Duration> {
  if !ms.is_finite() || ms < 0.0 {
    return None;
  }
  // In whole nanoseconds, rounded, while they fit: through seconds (`ms / 1000`, inexact in binary) a
  // budget of 1001 ms came back from `millis` as 1000.9999999999999, less than the 1001 the facade compares
  // it with. Beyond (about 584 years), `try_from_secs_f64` rejects what a Duration cannot hold.
  let nanos = (ms * 1e6).round();
  if nanos < u64::MAX as f64 {
    return Some(Duration::from_nanos(nanos as u64));
  }
  Duration::try_from_secs_f64(ms / 1000.0).ok()
}

/// A duration as fractional milliseconds, the unit every JavaScript-facing figure uses: whole seconds and
/// the nanoseconds beyond them converted apart, so a whole number of milliseconds comes back exact.
pub fn millis(d: Duration) -> f64 {
  d.as_secs() as f64 * 1000.0 + f64::from(d.subsec_nanos()) / 1e6
}

/// A duration in nanoseconds, saturating at `u64::MAX` (about 584 years) rather than wrapping.
pub(crate) fn duration_as_nanos(d: Duration) -> u64 {
  u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
  use super::*;

  const MS: Duration = Duration::from_millis(1);

  #[test]
  fn now_is_monotonic() {
    let a = MonoTime::now();
    let b = MonoTime::now();
    assert!(b >= a);
    assert!(a.as_nanos() > 0);
  }

  #[test]
  fn deadline_is_fixed_at_start_plus_budget() {
    let start = MonoTime::from_nanos(5_000_000_000);
    let d = Deadline::new(start, 300 * MS);
    assert_eq!(d.at().as_nanos(), 5_300_000_000);
    assert_eq!(d.budget(), 300 * MS);
    assert_eq!(d.start(), start);
  }

  #[test]
  fn remaining_counts_down_and_stops_at_zero() {
    let d = Deadline::new(MonoTime::from_nanos(0), 300 * MS);
    assert_eq!(d.remaining(MonoTime::from_nanos(0)), 300 * MS);
    assert_eq!(d.remaining(MonoTime::from_nanos(100_000_000)), 200 * MS);
    assert_eq!(d.remaining(MonoTime::from_nanos(300_000_000)), Duration::ZERO);
    assert_eq!(d.remaining(MonoTime::from_nanos(900_000_000)), Duration::ZERO);
  }

  #[test]
  fn passing_and_lateness_are_measured_from_the_absolute_deadline() {
    let d = Deadline::new(MonoTime::from_nanos(1_000), 300 * MS);
    let at = d.at().as_nanos();
    assert!(!d.has_passed(MonoTime::from_nanos(at - 1)));
    assert!(d.has_passed(MonoTime::from_nanos(at)));
    assert_eq!(d.lateness(MonoTime::from_nanos(at - 1)), Duration::ZERO);
    assert_eq!(
      d.lateness(MonoTime::from_nanos(at + 2_500_000)),
      Duration::from_micros(2_500)
    );
    assert_eq!(d.elapsed(MonoTime::from_nanos(at)), 300 * MS);
  }

  #[test]
  fn a_start_before_now_shortens_what_remains() {
    // A signal handled 40 ms before JavaScript learns of it leaves 260 ms of a 300 ms budget.
    let signalled = MonoTime::from_nanos(10_000_000_000);
    let d = Deadline::new(signalled, 300 * MS);
    let js_sees_it = signalled.saturating_add(40 * MS);
    assert_eq!(d.remaining(js_sees_it), 260 * MS);
  }

  #[test]
  fn huge_budgets_saturate_instead_of_overflowing() {
    let d = Deadline::new(MonoTime::from_nanos(u64::MAX - 10), Duration::from_secs(u64::MAX));
    assert_eq!(d.at().as_nanos(), u64::MAX);
    assert!(!d.has_passed(MonoTime::from_nanos(u64::MAX - 1)));
  }

  #[test]
  fn millisecond_conversion_rejects_what_javascript_must_not_pass() {
    assert_eq!(duration_from_millis(1500.0), Some(Duration::from_millis(1500)));
    assert_eq!(duration_from_millis(0.5), Some(Duration::from_micros(500)));
    assert_eq!(duration_from_millis(0.0), Some(Duration::ZERO));
    assert_eq!(duration_from_millis(-1.0), None);
    assert_eq!(duration_from_millis(f64::NAN), None);
    assert_eq!(duration_from_millis(f64::INFINITY), None);
    assert_eq!(duration_from_millis(1e300), None);
    assert!((millis(Duration::from_micros(2_500)) - 2.5).abs() < 1e-9);
  }

  #[test]
  fn whole_milliseconds_make_the_round_trip_exactly() {
    // The facade compares a budget that made the trip with the one it configured (the destroy reserve).
    for ms in (0..100_000u32).chain([2_147_483_647, 4_294_967_295]) {
      let ms = f64::from(ms);
      assert_eq!(millis(duration_from_millis(ms).unwrap()), ms, "{ms} ms");
    }
    assert_eq!(millis(duration_from_millis(1000.5).unwrap()), 1000.5);
  }
}
