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

/// How soon the guard checks again while no displacement has been seen lately; it may come up to
/// [`SLOW_LEEWAY`] later, so checks are at most 5 s apart: twelve or thirteen wake-ups a minute.
pub const SLOW_PERIOD: Duration = Duration::from_millis(4_500);
/// How much later than due a slow check may come. The kernel then wakes the watchdog along with a timer
/// that fires anyway in that span (Linux's timer slack), and a wake-up that rides on another costs less:
/// a thread that woke every second for a few system calls used 75 µs of CPU a wake-up with the default
/// slack and 38 µs with 500 ms, on the machine this was measured on.
pub const SLOW_LEEWAY: Duration = Duration::from_millis(500);
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

/// When the watchdog wakes next, and how much later than that the kernel may wake it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wake {
  /// `None`: nothing is due; it sleeps until written to.
  pub at: Option<MonoTime>,
  pub leeway: Duration,
}

/// The watchdog's next wake: the earlier of the guard's next check and `others` (what else is due:
/// deadlines, probes, a signal's fallback, ...). Only a slow check may come late, and never past `others`,
/// which keep the thread's default slack: the leeway is at most the time between the two, and
/// `timed_wait` in `watchdog` drops a leeway the kernel's own estimate of a long wait would exceed.
pub fn next_wake(guard: Option<&GuardSchedule>, others: Option<MonoTime>) -> Wake {
  match (guard.and_then(|g| g.next.map(|next| (next, g.leeway()))), others) {
    (Some((check, leeway)), others) if others.is_none_or(|other| check < other) => Wake {
      at: Some(check),
      leeway: others.map_or(leeway, |other| leeway.min(other.saturating_since(check))),
    },
    (_, others) => Wake {
      at: others,
      leeway: Duration::ZERO,
    },
  }
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

  /// How late the next check may come: [`SLOW_LEEWAY`] for a slow one (no displacement seen lately), none
  /// while watchful.
  pub fn leeway(&self) -> Duration {
    if self.watchful_until.is_none() {
      SLOW_LEEWAY
    } else {
      Duration::ZERO
    }
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
  fn an_undisturbed_guard_checks_every_slow_period_with_leeway() {
    let mut schedule = GuardSchedule::starting(at(0));
    assert_eq!(schedule.next(), Some(at(4_500)));
    assert_eq!(schedule.leeway(), SLOW_LEEWAY);
    assert!(!schedule.is_due(at(4_499)));
    assert!(schedule.is_due(at(4_500)));
    // The kernel woke it late, within the leeway: the next check counts from this one.
    schedule.checked(at(4_900), false);
    assert_eq!(schedule.next(), Some(at(9_400)));
    assert_eq!(schedule.leeway(), SLOW_LEEWAY);
    assert_eq!(
      SLOW_PERIOD + SLOW_LEEWAY,
      Duration::from_secs(5),
      "the bound the docs give"
    );
  }

  #[test]
  fn a_displacement_makes_it_watchful_for_a_while_then_slow_again() {
    let mut schedule = GuardSchedule::starting(at(0));
    schedule.checked(at(4_500), true);
    assert_eq!(schedule.next(), Some(at(4_700)));
    assert_eq!(schedule.leeway(), Duration::ZERO, "a watchful check is not late");
    schedule.checked(at(4_700), false);
    assert_eq!(schedule.next(), Some(at(4_900)), "still watchful");
    schedule.checked(at(34_400), false);
    assert_eq!(
      schedule.next(),
      Some(at(34_600)),
      "watchful until 30 s after the displacement"
    );
    schedule.checked(at(34_600), false);
    assert_eq!(schedule.next(), Some(at(39_100)), "slow again");
    assert_eq!(schedule.leeway(), SLOW_LEEWAY);
    schedule.checked(at(39_100), true);
    assert_eq!(
      schedule.next(),
      Some(at(39_300)),
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
    assert_eq!(schedule.leeway(), Duration::ZERO);
  }

  /// A wake at `ms` that may come `late_ms` late.
  fn wake(ms: Option<u64>, late_ms: u64) -> Wake {
    Wake {
      at: ms.map(at),
      leeway: Duration::from_millis(late_ms),
    }
  }

  #[test]
  fn only_a_slow_check_may_come_late_and_never_past_what_else_is_due() {
    let slow = GuardSchedule::starting(at(0));
    assert_eq!(next_wake(Some(&slow), None), wake(Some(4_500), 500));
    // A deadline's step due before the check: woken for it, on time.
    assert_eq!(next_wake(Some(&slow), Some(at(3_000))), wake(Some(3_000), 0));
    // Due 200 ms after the check: the check may be late by 200 ms at most.
    assert_eq!(next_wake(Some(&slow), Some(at(4_700))), wake(Some(4_500), 200));
    // Due at the same instant: woken for the other, on time.
    assert_eq!(next_wake(Some(&slow), Some(at(4_500))), wake(Some(4_500), 0));
    let mut watchful = slow;
    watchful.displacement_seen(at(100));
    assert_eq!(next_wake(Some(&watchful), None), wake(Some(300), 0));
    assert_eq!(next_wake(None, None), wake(None, 0));
    assert_eq!(next_wake(None, Some(at(7))), wake(Some(7), 0));
  }

  #[test]
  fn no_guard_is_never_due() {
    let schedule = GuardSchedule::default();
    assert_eq!(schedule.next(), None);
    assert!(!schedule.is_due(at(u64::MAX / 1_000_000)));
  }
}
