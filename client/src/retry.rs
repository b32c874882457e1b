//! The one retry policy: how long to wait between tries of anything this project sends
//! (Lambda invokes, registry requests and uploads, CloudWatch Logs polling; the AWS SDK's own
//! retries are configured from the same figures). Exponential from a first delay, doubled per
//! try, capped, with jitter — the schedule from `backon`, not written here. *What* is retried
//! stays with each caller (a throttle is, a bad request is not); *how long to wait* is this.

use std::time::Duration;

use backon::BackoffBuilder;

/// First wait, doubling per try up to `max`, with jitter; `attempts` tries in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

/// The longest wait between two tries, whoever retries.
pub const MAX_DELAY: Duration = Duration::from_secs(20);

impl Backoff {
    /// The policy with these tries and first wait, capped at [`MAX_DELAY`].
    pub fn new(attempts: u32, first: Duration) -> Backoff {
        Backoff {
            first,
            max: MAX_DELAY.max(first),
            attempts: attempts.max(1),
        }
    }

    /// The waits before the second, third, … tries: `attempts - 1` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + 'static {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }
}

/// A poller's wait: `poll`, doubled per throttled poll in a row up to [`MAX_DELAY`], and back
/// to `poll` once a poll goes through.
pub fn throttled_poll(poll: Duration, throttled_in_a_row: u32) -> Duration {
    if throttled_in_a_row == 0 {
        return poll;
    }
    let doubled = poll.saturating_mul(2u32.saturating_pow(throttled_in_a_row.min(16)));
    doubled.min(MAX_DELAY.max(poll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_are_capped_and_stop_after_the_attempts() {
        let policy = Backoff::new(8, Duration::from_millis(100));
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 7);
        // Jitter adds at most the delay itself; the cap holds before jitter.
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200));
        assert!(delays[3] >= Duration::from_millis(800), "{delays:?}");
        for d in &delays {
            assert!(*d <= MAX_DELAY * 2, "{d:?}");
        }
        assert_eq!(
            Backoff::new(1, Duration::from_millis(1)).delays().count(),
            0
        );
        assert_eq!(Backoff::new(0, Duration::from_millis(1)).attempts, 1);
    }

    #[test]
    fn a_throttled_poll_backs_off_and_starts_over() {
        let poll = Duration::from_secs(2);
        assert_eq!(throttled_poll(poll, 0), poll);
        assert_eq!(throttled_poll(poll, 1), Duration::from_secs(4));
        assert_eq!(throttled_poll(poll, 2), Duration::from_secs(8));
        assert_eq!(throttled_poll(poll, 30), MAX_DELAY);
    }
}
