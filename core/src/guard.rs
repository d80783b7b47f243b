//! When the watchdog checks that our handlers are still in their signal slots.
//!
//! Most displacements are made on the main thread (Node's one-shot SIGINT handler after a `vm` evaluation
//! with `breakOnSigint`, an addon installing its own handler as it loads) and the per-turn check in
//! `main_loop` undoes them before the event loop waits again. The watchdog's guard is the backstop for the
//! rest (a library's own thread calling `sigaction`) while the loop is idle, and it is what an idle service
//! pays for all its life: so it checks rarely until it has seen a displacement, and then often for a while,
//! because code that replaced a handler once tends to do it again (a reconnecting client library, say).
//!
//! Pure scheduling, so `cargo test` covers it; the check itself is `signals::reassert`.

use std::time::Duration;

use crate::clock::MonoTime;

/// How often the guard checks while no displacement has been seen lately: twelve wake-ups a minute.
pub const SLOW_PERIOD: Duration = Duration::from_secs(5);
/// How often it checks after a displacement, for [`WATCHFUL_SPAN`].
pub const WATCHFUL_PERIOD: Duration = Duration::from_millis(200);
/// How long after the latest displacement the guard stays watchful.
pub const WATCHFUL_SPAN: Duration = Duration::from_secs(30);

/// The guard's timetable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardSchedule {
  next: Option<MonoTime>,
  watchful_until: Option<MonoTime>,
}

impl GuardSchedule {
  /// The timetable of a guard that starts now, with nothing seen yet.
  pub fn starting(now: MonoTime) -> Self {
    Self {
      next: Some(now.saturating_add(SLOW_PERIOD)),
      watchful_until: None,
    }
  }

  /// When the next check is due (`None`: no guard).
  pub fn next(&self) -> Option<MonoTime> {
    self.next
  }

  /// Whether a check is due at `now`.
  pub fn is_due(&self, now: MonoTime) -> bool {
    self.next.is_some_and(|next| now >= next)
  }

  /// Records a check made at `now` that found a displacement or not, and sets the next one.
  pub fn checked(&mut self, now: MonoTime, found_displacement: bool) {
    if found_displacement {
      self.watchful_until = Some(now.saturating_add(WATCHFUL_SPAN));
    }
    let period = if self.watchful_until.is_some_and(|until| now < until) {
      WATCHFUL_PERIOD
    } else {
      self.watchful_until = None;
      SLOW_PERIOD
    };
    self.next = Some(now.saturating_add(period));
  }

  /// Records a displacement found elsewhere (the main loop's per-turn check): watchful from now on.
  pub fn displacement_seen(&mut self, now: MonoTime) {
    self.watchful_until = Some(now.saturating_add(WATCHFUL_SPAN));
    let soon = now.saturating_add(WATCHFUL_PERIOD);
    self.next = Some(self.next.map_or(soon, |next| next.min(soon)));
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn at(ms: u64) -> MonoTime {
    MonoTime::from_nanos(ms * 1_000_000)
  }

  #[test]
  fn an_undisturbed_guard_checks_every_slow_period() {
    let mut schedule = GuardSchedule::starting(at(0));
    assert_eq!(schedule.next(), Some(at(5_000)));
    assert!(!schedule.is_due(at(4_999)));
    assert!(schedule.is_due(at(5_000)));
    schedule.checked(at(5_000), false);
    assert_eq!(schedule.next(), Some(at(10_000)));
  }

  #[test]
  fn a_displacement_makes_it_watchful_for_a_while_then_slow_again() {
    let mut schedule = GuardSchedule::starting(at(0));
    schedule.checked(at(5_000), true);
    assert_eq!(schedule.next(), Some(at(5_200)));
    schedule.checked(at(5_200), false);
    assert_eq!(schedule.next(), Some(at(5_400)), "still watchful");
    schedule.checked(at(34_900), false);
    assert_eq!(
      schedule.next(),
      Some(at(35_100)),
      "watchful until 30 s after the displacement"
    );
    schedule.checked(at(35_100), false);
    assert_eq!(schedule.next(), Some(at(40_100)), "slow again");
    schedule.checked(at(40_100), true);
    assert_eq!(
      schedule.next(),
      Some(at(40_300)),
      "a new displacement makes it watchful again"
    );
  }

  #[test]
  fn a_displacement_seen_by_the_main_loop_brings_the_next_check_forward() {
    let mut schedule = GuardSchedule::starting(at(0));
    schedule.displacement_seen(at(1_000));
    assert_eq!(schedule.next(), Some(at(1_200)));
    schedule.checked(at(1_200), false);
    assert_eq!(schedule.next(), Some(at(1_400)));
    // Never pushed later than a check already due sooner.
    schedule.displacement_seen(at(1_300));
    assert_eq!(schedule.next(), Some(at(1_400)));
  }

  #[test]
  fn no_guard_is_never_due() {
    let schedule = GuardSchedule::default();
    assert_eq!(schedule.next(), None);
    assert!(!schedule.is_due(at(u64::MAX / 1_000_000)));
  }
}
