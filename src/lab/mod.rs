//! Client-side tools that drive a running cluster through its HTTP API:
//! the README's exercises, run for every strategy, with the answers counted;
//! the measured comparison of all strategies under load; and the flip test,
//! contended load while the strategy switches.

pub mod client;
pub mod compare;
pub mod exercises;
pub mod flip;

/// The name of the `index`-th seat of an event that `POST /admin/events`
/// made with `rows` rows of `seats_per_row`: rows A..Z, then AA..ZZ.
pub(crate) fn seat_name(index: usize, seats_per_row: usize, rows: usize) -> String {
    let (row, seat) = (index / seats_per_row % rows, index % seats_per_row + 1);
    let row_name = if row < 26 {
        char::from(b'A' + row as u8).to_string()
    } else {
        format!("{}{}", char::from(b'A' + (row / 26 - 1) as u8), char::from(b'A' + (row % 26) as u8))
    };
    format!("{row_name}{seat}")
}

#[cfg(test)]
mod tests {
    use super::seat_name;

    #[test]
    fn seat_names_match_the_rows_the_database_creates() {
        assert_eq!(seat_name(0, 100, 200), "A1");
        assert_eq!(seat_name(99, 100, 200), "A100");
        assert_eq!(seat_name(100, 100, 200), "B1");
        assert_eq!(seat_name(2599, 100, 200), "Z100");
        assert_eq!(seat_name(2600, 100, 200), "AA1");
        assert_eq!(seat_name(19_999, 100, 200), "GR100");
    }
}
