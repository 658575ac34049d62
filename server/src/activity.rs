//! This replica's own count of what its bookings came to over the last
//! minute: confirmed, refused and double-booked.
//!
//! It travels in the replica's heartbeat, so `/admin/cluster` (and the seat
//! map's per-replica strip) shows each replica's recent work from the
//! replica itself, with no Prometheus in between. Sixty one-second buckets;
//! a std `Mutex`, not tokio's, because nothing awaits while it is held.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::domain::BookingStatus;

const WINDOW_SECS: u64 = 60;

/// Bookings by outcome over the last minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastMinute {
    pub confirmed: u64,
    pub refused: u64,
    pub double_booked: u64,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    second: u64,
    counts: LastMinute,
}

pub struct Activity {
    buckets: Mutex<[Bucket; WINDOW_SECS as usize]>,
}

impl Default for Activity {
    fn default() -> Self {
        Self { buckets: Mutex::new([Bucket::default(); WINDOW_SECS as usize]) }
    }
}

impl Activity {
    pub fn record(&self, status: BookingStatus) {
        self.record_at(now(), status);
    }

    pub fn last_minute(&self) -> LastMinute {
        self.last_minute_at(now())
    }

    fn record_at(&self, second: u64, status: BookingStatus) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = &mut buckets[(second % WINDOW_SECS) as usize];
        if bucket.second != second {
            *bucket = Bucket { second, counts: LastMinute::default() };
        }
        match status {
            BookingStatus::Confirmed => bucket.counts.confirmed += 1,
            BookingStatus::Failed => bucket.counts.refused += 1,
            BookingStatus::DoubleBooked => bucket.counts.double_booked += 1,
        }
    }

    fn last_minute_at(&self, second: u64) -> LastMinute {
        let buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets.iter().filter(|bucket| bucket.second + WINDOW_SECS > second && bucket.second <= second).fold(
            LastMinute::default(),
            |total, bucket| LastMinute {
                confirmed: total.confirmed + bucket.counts.confirmed,
                refused: total.refused + bucket.counts.refused,
                double_booked: total.double_booked + bucket.counts.double_booked,
            },
        )
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_sixty_seconds_only() {
        let activity = Activity::default();
        activity.record_at(1_000, BookingStatus::Confirmed);
        activity.record_at(1_030, BookingStatus::Failed);
        activity.record_at(1_030, BookingStatus::DoubleBooked);
        assert_eq!(activity.last_minute_at(1_030), LastMinute { confirmed: 1, refused: 1, double_booked: 1 });
        assert_eq!(activity.last_minute_at(1_060), LastMinute { confirmed: 0, refused: 1, double_booked: 1 }, "1000 is a minute old");
        activity.record_at(1_090, BookingStatus::Confirmed); // reuses 1030's bucket
        assert_eq!(activity.last_minute_at(1_090), LastMinute { confirmed: 1, refused: 0, double_booked: 0 });
    }
}
