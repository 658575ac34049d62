//! The lab's vocabulary: strategy names, the cluster's epoch, seat numbers,
//! customer ids and idempotency keys (checked once, where they enter),
//! booking statuses and the reasons a booking is refused.
//!
//! A leaf module: it imports nothing from the crate, and everything else
//! (strategies, storage, the HTTP layer, the cluster) speaks in its terms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The name of a strategy, as clients send it and as the database stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyName {
    None,
    Mutex,
    Pessimistic,
    Optimistic,
    Distributed,
    Redlock,
    Fenced,
    Etcd,
}

impl StrategyName {
    pub const ALL: [StrategyName; 8] =
        [Self::None, Self::Mutex, Self::Pessimistic, Self::Optimistic, Self::Distributed, Self::Redlock, Self::Fenced, Self::Etcd];

    /// The strategies this lab teaches to hold across replicas.
    pub const SAFE: [StrategyName; 6] =
        [Self::Pessimistic, Self::Optimistic, Self::Distributed, Self::Redlock, Self::Fenced, Self::Etcd];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Mutex => "mutex",
            Self::Pessimistic => "pessimistic",
            Self::Optimistic => "optimistic",
            Self::Distributed => "distributed",
            Self::Redlock => "redlock",
            Self::Fenced => "fenced",
            Self::Etcd => "etcd",
        }
    }

    /// Whether the lab promises that this strategy never double-books across
    /// replicas (`none` and `mutex` are the counter-examples).
    pub fn is_safe(self) -> bool {
        Self::SAFE.contains(&self)
    }

    /// The valid names, comma separated, for error messages.
    pub fn valid_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for StrategyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == name)
            .ok_or_else(|| format!("unknown strategy '{name}'; valid strategies are: {}", Self::valid_names()))
    }
}

/// The cluster's strategy and the epoch it was set in.
///
/// The epoch only ever grows: every strategy switch and every
/// reset starts a new one. A booking remembers the epoch it started in, and
/// its write commits only while that epoch is still the cluster's, so no
/// booking can straddle a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub name: StrategyName,
    /// Every switch and every reset starts a new one.
    pub epoch: u64,
}

/// `bookings.status`: what became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// The seat's only holder.
    Confirmed,
    /// Given the seat while another booking already held it.
    DoubleBooked,
    /// Refused; `reason` says why.
    Failed,
}

impl BookingStatus {
    pub const ALL: [BookingStatus; 3] = [Self::Confirmed, Self::DoubleBooked, Self::Failed];

    /// The status a booking row holds (`bookings.status`).
    pub fn parse(status: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|known| known.as_str() == status).ok_or_else(|| format!("unknown booking status {status:?}"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::DoubleBooked => "double_booked",
            Self::Failed => "failed",
        }
    }
}

/// Why an attempt did not get the seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The seat was already booked when this attempt looked.
    SeatTaken,
    /// Another customer's live hold keeps the seat (see `POST /holds`).
    SeatHeld,
    /// Another request holds the seat's lock.
    LockBusy,
    /// Every optimistic retry lost its compare-and-set.
    RetriesExhausted,
    /// A newer fencing token reached the seat first: this holder's lock had expired.
    StaleToken,
    /// The cluster switched strategy (or was reset) while this booking was in
    /// flight on a replica that had not caught up: its write was refused.
    StaleStrategy,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [Self::SeatTaken, Self::SeatHeld, Self::LockBusy, Self::RetriesExhausted, Self::StaleToken, Self::StaleStrategy];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SeatTaken => "seat_taken",
            Self::SeatHeld => "seat_held",
            Self::LockBusy => "lock_busy",
            Self::RetriesExhausted => "retries_exhausted",
            Self::StaleToken => "stale_token",
            Self::StaleStrategy => "stale_strategy",
        }
    }
}

/// `holds.status`: where a hold is in its life. A `held` hold whose
/// `expires_at` has passed (by Postgres' clock) is expired already; the
/// sweep only writes it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Keeps the seat until `expires_at`.
    Held,
    /// Became a booking (`booking_id`).
    Confirmed,
    /// Given back by its customer.
    Released,
    /// Ran out before it was confirmed; the seat went back on sale.
    Expired,
}

impl HoldStatus {
    pub const ALL: [HoldStatus; 4] = [Self::Held, Self::Confirmed, Self::Released, Self::Expired];

    pub fn parse(status: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|known| known.as_str() == status).ok_or_else(|| format!("unknown hold status {status:?}"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

/// A seat's name within its event: one to four letters (the row), then one
/// to four digits (the seat): `A1`, `J10`, `AA1024`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SeatNumber(String);

impl SeatNumber {
    pub fn parse(seat: &str) -> Result<Self, String> {
        let letters = seat.chars().take_while(char::is_ascii_alphabetic).count();
        let digits = seat.len() - letters;
        let valid = (1..=4).contains(&letters) && (1..=4).contains(&digits) && seat[letters..].chars().all(|c| c.is_ascii_digit());
        if valid {
            Ok(Self(seat.to_owned()))
        } else {
            Err(format!("seat_number must be a row letter followed by a seat number, like \"A1\"; got {:?}", truncated(seat)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who books: not blank, at most [`CustomerId::MAX_CHARS`] characters, no
/// control characters; surrounding whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// The longest customer id accepted (the bookings table's column width).
    pub const MAX_CHARS: usize = 255;

    pub fn parse(customer: &str) -> Result<Self, String> {
        let trimmed = customer.trim();
        if trimmed.is_empty() {
            return Err("customer_id must not be empty".into());
        }
        if customer.chars().count() > Self::MAX_CHARS {
            return Err(format!("customer_id must be at most {} characters", Self::MAX_CHARS));
        }
        if customer.chars().any(char::is_control) {
            return Err("customer_id must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's `Idempotency-Key`: 1 to [`IdempotencyKey::MAX_LEN`] printable
/// ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(key: &str) -> Result<Self, String> {
        Self::parse_bytes(key.as_bytes())
    }

    /// The key from raw bytes, as a header carries them (which need not be
    /// UTF-8: anything but printable ASCII is refused alike).
    pub fn parse_bytes(key: &[u8]) -> Result<Self, String> {
        match std::str::from_utf8(key) {
            Ok(key) if (1..=Self::MAX_LEN).contains(&key.len()) && key.bytes().all(|b| (0x20..=0x7e).contains(&b)) => {
                Ok(Self(key.to_owned()))
            }
            _ => Err(format!("Idempotency-Key must be 1 to {} printable ASCII characters", Self::MAX_LEN)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What every checked string shares: it reads as the `str` it holds, and it
/// is (de)serialised as that string, checked again on the way in.
macro_rules! checked_string {
    ($name:ident) => {
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

checked_string!(SeatNumber);
checked_string!(CustomerId);
checked_string!(IdempotencyKey);

/// The first characters of a bad value, for an error message.
fn truncated(value: &str) -> String {
    value.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for name in StrategyName::ALL {
            assert_eq!(name.as_str().parse::<StrategyName>(), Ok(name));
        }
        let error = "bogus".parse::<StrategyName>().unwrap_err();
        assert!(error.contains("pessimistic, optimistic"), "{error}");
    }

    #[test]
    fn seat_numbers_are_letters_then_digits() {
        for good in ["A1", "J10", "AA1024", "z9"] {
            assert!(SeatNumber::parse(good).is_ok(), "{good} should be valid");
        }
        for bad in ["", "A", "1", "1A", "A-1", "A1B", "ABCDE1", "A12345", "Ä1", "A 1", "A1'; DROP"] {
            let error = SeatNumber::parse(bad).unwrap_err();
            assert!(error.starts_with("seat_number must be"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn customer_ids_are_trimmed_and_checked() {
        assert_eq!(CustomerId::parse("  alice ").unwrap().as_str(), "alice");
        assert!(CustomerId::parse(&"c".repeat(255)).is_ok());
        for (bad, says) in [("", "empty"), ("   ", "empty"), (&"c".repeat(256) as &str, "at most 255"), ("al\u{7}ice", "control")] {
            let error = CustomerId::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn keys_are_1_to_255_printable_ascii_characters() {
        assert_eq!(IdempotencyKey::parse("order-42 retry").unwrap().as_str(), "order-42 retry");
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["".to_owned(), "k".repeat(256), "tab\there".to_owned(), "caf\u{e9}".to_owned()] {
            let error = IdempotencyKey::parse(&bad).unwrap_err();
            assert!(error.contains("Idempotency-Key"), "{error}");
        }
        // A header's bytes need not be UTF-8 (Latin-1 é here): refused the same way.
        assert!(IdempotencyKey::parse_bytes(b"caf\xe9").unwrap_err().contains("printable ASCII"));
    }

    #[test]
    fn only_none_and_mutex_are_unsafe() {
        let unsafe_ones: Vec<_> = StrategyName::ALL.into_iter().filter(|name| !name.is_safe()).collect();
        assert_eq!(unsafe_ones, [StrategyName::None, StrategyName::Mutex]);
    }
}
