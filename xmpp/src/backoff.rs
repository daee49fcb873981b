//! Reconnect delays: exponential from a minimum to a cap, with jitter so a
//! fleet of services does not reconnect in lockstep after a server restart.
//! Sans-IO: the caller owns the clock and the randomness seed.

use std::time::Duration;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// `seed` drives the jitter (any value; tests pass a fixed one).
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt: the current step, less up to 25 %
    /// jitter. Each call doubles the step up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = base.as_millis() as u64 / 4;
        let cut = if jitter == 0 {
            0
        } else {
            self.rng % (jitter + 1)
        };
        base - Duration::from_millis(cut)
    }

    /// Back to the minimum after a successful connection.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 7);
        let d: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert!(d[0] >= 75 && d[0] <= 100, "{d:?}");
        assert!(d[1] >= 150 && d[1] <= 200, "{d:?}");
        assert!(d[5] >= 750 && d[5] <= 1000, "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
