//! When a webhook delivery is tried again (issue 18): the Standard Webhooks
//! schedule (at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about
//! 27.5 hours in all, so at least a day), each wait spread by up to ±10%
//! so that deliveries failed by one outage do not all come back at once.
//! Network errors, 5xx and 429 are retried (a `Retry-After` the endpoint
//! sends is honoured when it asks for longer); any other answer is final.
//! An endpoint that has not taken a delivery for a day is disabled.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The waits after each failed attempt: the first attempt is made at once,
/// the second 5 s after the first fails, and so on.
pub const RETRY_WAITS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(5 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
    Duration::from_secs(10 * 60 * 60),
];

/// The most attempts one delivery gets (the first and every retry).
pub const MAX_ATTEMPTS: u32 = RETRY_WAITS.len() as u32 + 1;

/// The longest `Retry-After` honoured: an endpoint cannot park a delivery
/// past the schedule's longest wait.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60 * 60);

/// How long an endpoint may fail every delivery before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// No answer: the connection failed, timed out or was cut.
    NetworkError,
    /// An HTTP answer, with its `Retry-After` (in seconds or as a date,
    /// already turned into a wait) when it had one.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered (a 2xx answer).
    Done,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Failed for good: a final answer, or the schedule is used up.
    GiveUp,
}

/// What follows attempt number `attempt` (1 for the first) that ended at
/// `now` with `result`. `jitter` is a random number in `[0, 1)`: the wait
/// is scaled by `0.9 + 0.2 × jitter`.
pub fn next_step(attempt: u32, result: AttemptResult, now: DateTime<Utc>, jitter: f64) -> NextStep {
    let retry_after = match result {
        AttemptResult::Answered { status, .. } if (200..300).contains(&status) => {
            return NextStep::Done;
        }
        AttemptResult::Answered {
            status,
            retry_after,
        } if status == 429 || status >= 500 => retry_after,
        AttemptResult::Answered { .. } => return NextStep::GiveUp,
        AttemptResult::NetworkError => None,
    };
    let Some(scheduled) = attempt
        .checked_sub(1)
        .and_then(|index| RETRY_WAITS.get(index as usize))
    else {
        return NextStep::GiveUp;
    };
    let spread = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
    let mut wait = scheduled.mul_f64(spread);
    if let Some(asked) = retry_after {
        wait = wait.max(asked.min(MAX_RETRY_AFTER));
    }
    match chrono::Duration::from_std(wait) {
        Ok(wait) => NextStep::RetryAt(now + wait),
        Err(_) => NextStep::GiveUp,
    }
}

/// Whether an endpoint whose deliveries have all failed since
/// `failing_since` (the first failure after its last success; `None` when
/// its last delivery succeeded) is to be disabled at `now`.
pub fn should_disable(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    failing_since.is_some_and(|since| {
        chrono::Duration::from_std(DISABLE_AFTER).is_ok_and(|day| now - since >= day)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn answered(status: u16) -> AttemptResult {
        AttemptResult::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn a_2xx_is_delivered_and_other_4xx_are_final() {
        assert_eq!(next_step(1, answered(204), at(0), 0.5), NextStep::Done);
        for status in [400, 401, 403, 404, 410, 413] {
            assert_eq!(
                next_step(1, answered(status), at(0), 0.5),
                NextStep::GiveUp,
                "{status}"
            );
        }
        // A redirect is not followed, and not retried either.
        assert_eq!(next_step(1, answered(302), at(0), 0.5), NextStep::GiveUp);
    }

    #[test]
    fn network_errors_5xx_and_429_follow_the_schedule_for_more_than_a_day() {
        let mut now = at(0);
        let mut total = Duration::ZERO;
        for attempt in 1..MAX_ATTEMPTS {
            let result = match attempt % 3 {
                0 => AttemptResult::NetworkError,
                1 => answered(503),
                _ => answered(429),
            };
            // No jitter at 0.5.
            let NextStep::RetryAt(next) = next_step(attempt, result, now, 0.5) else {
                panic!("attempt {attempt} is retried");
            };
            let wait = (next - now).to_std().unwrap_or_default();
            assert_eq!(wait, RETRY_WAITS[attempt as usize - 1], "attempt {attempt}");
            total += wait;
            now = next;
        }
        assert!(total >= DISABLE_AFTER, "{total:?}");
        assert_eq!(
            next_step(MAX_ATTEMPTS, answered(500), now, 0.5),
            NextStep::GiveUp
        );
    }

    #[test]
    fn waits_are_spread_by_at_most_a_tenth_and_retry_after_is_honoured() {
        let wait = |jitter: f64| match next_step(2, AttemptResult::NetworkError, at(0), jitter) {
            NextStep::RetryAt(next) => (next - at(0)).num_seconds(),
            other => panic!("{other:?}"),
        };
        assert_eq!((wait(0.0), wait(0.999_999)), (270, 329));
        let asked = |seconds: u64| AttemptResult::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        // Longer than the schedule: honoured, up to 10 h.
        let later = next_step(1, asked(600), at(0), 0.5);
        assert_eq!(later, NextStep::RetryAt(at(600)));
        let capped = next_step(1, asked(7 * 24 * 3600), at(0), 0.5);
        assert_eq!(capped, NextStep::RetryAt(at(10 * 3600)));
        // Shorter: the schedule stands.
        assert_eq!(next_step(1, asked(1), at(0), 0.5), NextStep::RetryAt(at(5)));
    }

    #[test]
    fn an_endpoint_failing_for_a_day_is_disabled() {
        assert!(!should_disable(None, at(0)));
        assert!(!should_disable(Some(at(0)), at(24 * 3600 - 1)));
        assert!(should_disable(Some(at(0)), at(24 * 3600)));
    }
}
