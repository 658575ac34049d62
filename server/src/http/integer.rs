//! Integers read by JSON Schema's rules: `573.0` is an integer (a number
//! whose fraction is zero), so a field or parameter the document types
//! `integer` takes it, in a JSON body (`exact`, `optional`) or in a path or
//! query string (`text`, `optional_text`). serde alone reads `573.0` as a
//! float, or `"573.0"` as no integer at all, and would reject a request the
//! document allows.

use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// An integer field: `#[serde(deserialize_with = "integer::exact")]`.
pub(super) fn exact<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    in_range(Number::deserialize(deserializer)?)
}

/// An optional integer field (absent or `null` is `None`):
/// `#[serde(default, deserialize_with = "integer::optional")]`.
pub(super) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    Option::<Number>::deserialize(deserializer)?.map(in_range).transpose()
}

/// A JSON number as a `T`, if it is a whole number in `T`'s range; the error
/// names the number.
fn in_range<T: TryFrom<i64>, E: serde::de::Error>(number: Number) -> Result<T, E> {
    whole(&number)
        .and_then(|value| T::try_from(value).ok())
        .ok_or_else(|| E::custom(format!("expected an integer in range, got {number}")))
}

/// An integer path or query parameter: `#[serde(deserialize_with = "integer::text")]`.
pub(super) fn text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let text = String::deserialize(deserializer)?;
    parse_text(&text).ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {text:?}")))
}

/// An optional integer query parameter:
/// `#[serde(default, deserialize_with = "integer::optional_text")]`.
pub(super) fn optional_text<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    text(deserializer).map(Some)
}

fn parse_text<T: TryFrom<i64>>(text: &str) -> Option<T> {
    let value = match text.parse::<i64>() {
        Ok(value) => value,
        Err(_) => whole(&Number::from_f64(text.parse::<f64>().ok()?)?)?,
    };
    T::try_from(value).ok()
}

/// The number as an `i64`, if it is a whole number that fits.
fn whole(number: &Number) -> Option<i64> {
    if let Some(value) = number.as_i64() {
        return Some(value);
    }
    let value = number.as_f64()?;
    // 2^63 itself does not fit; every float below it with no fraction does.
    (value.fract() == 0.0 && value >= -(2f64.powi(63)) && value < 2f64.powi(63)).then_some(value as i64)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::exact")]
        rows: i32,
        #[serde(default, deserialize_with = "super::optional")]
        ttl_ms: Option<i64>,
    }

    fn read(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn a_number_with_a_zero_fraction_is_an_integer() {
        let body = read(r#"{"rows": 573.0, "ttl_ms": 100918.0}"#).unwrap();
        assert_eq!((body.rows, body.ttl_ms), (573, Some(100918)));
        assert_eq!(read(r#"{"rows": 5}"#).unwrap().ttl_ms, None);
        assert_eq!(read(r#"{"rows": 5, "ttl_ms": null}"#).unwrap().ttl_ms, None);
    }

    #[test]
    fn a_path_or_query_integer_may_be_written_with_a_zero_fraction() {
        assert_eq!(super::parse_text::<i64>("265"), Some(265));
        assert_eq!(super::parse_text::<i64>("265.0"), Some(265));
        assert_eq!(super::parse_text::<i64>("-3"), Some(-3));
        for bad in ["265.5", "abc", "", "NaN", "inf", "1e300"] {
            assert_eq!(super::parse_text::<i64>(bad), None, "{bad}");
        }
    }

    #[test]
    fn fractions_strings_and_overflow_are_refused_naming_the_value() {
        assert!(read(r#"{"rows": 1.5}"#).unwrap_err().contains("got 1.5"));
        assert!(read(r#"{"rows": 3000000000}"#).unwrap_err().contains("got 3000000000"));
        assert!(read(r#"{"rows": 1e300}"#).is_err());
        assert!(read(r#"{"rows": "5"}"#).is_err());
    }
}
