//! Where "now" comes from: the system clock in the functions, a settable one in tests, so no
//! test depends on the wall clock (a fixed-window test must not fail at midnight UTC).

/// Seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        jsonwebtoken::get_current_timestamp()
    }
}
