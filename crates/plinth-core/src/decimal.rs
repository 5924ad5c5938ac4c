//! Decimal numbers exactly as written, for values a 64-bit float cannot hold.
//!
//! DynamoDB keeps numbers of up to 38 significant digits and every AWS SDK carries them as
//! decimal text; a YAML scalar such as `12345678901234567.89` would lose its cents as an
//! `f64`. The loader keeps such a number as `{"$number": "<decimal text>"}` (numbers a
//! float holds exactly stay plain JSON numbers), and types that store decimals take the
//! text from there. The text is normalised the way DynamoDB normalises numbers: `1.50` and
//! `1.5` are the same number, and so are `1e3` and `1000`.

use serde_json::{Map, Number, Value};

/// The farthest power of ten a decimal may have (DynamoDB's own range is ±130).
const MAX_EXPONENT: i64 = 1_000_000;

/// The key of a tagged decimal: `{"$number": "12345678901234567.89"}`.
pub const NUMBER_TAG: &str = "$number";

/// A decimal as sign, significant digits (no leading or trailing zeros) and exponent:
/// `-digits × 10^exponent`. Zero has no digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    pub digits: String,
    pub exponent: i64,
}

impl Decimal {
    /// Decimal text (`-12.50`, `1e-3`, `+7`); `None` for anything else (`.inf`, `0x1f`).
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return None;
        }
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        let mut exponent = exponent.checked_sub(fraction_len)?;
        // No number anyone writes is this far from 1; bounding it keeps arithmetic simple.
        if exponent.unsigned_abs() > MAX_EXPONENT.unsigned_abs() {
            return None;
        }
        let joined = format!("{whole}{fraction}");
        let mut digits = joined.trim_start_matches('0').to_string();
        while digits.ends_with('0') {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Some(Decimal::zero());
        }
        if exponent.unsigned_abs() > MAX_EXPONENT.unsigned_abs() {
            return None;
        }
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }

    fn zero() -> Decimal {
        Decimal {
            negative: false,
            digits: String::new(),
            exponent: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// How many significant digits the number has.
    pub fn precision(&self) -> usize {
        self.digits.len()
    }

    /// The power of ten of the first significant digit (`1234.5` → 3, `0.01` → -2).
    pub fn magnitude(&self) -> i64 {
        self.exponent + self.digits.len() as i64 - 1
    }

    /// One text per number: plain decimals where that is short, else `d.dddE±x`.
    pub fn canonical_text(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        let len = self.digits.len() as i64;
        let magnitude = self.magnitude();
        let body = if self.exponent >= 0 && magnitude < 40 {
            format!("{}{}", self.digits, "0".repeat(self.exponent as usize))
        } else if self.exponent < 0 && magnitude > -30 {
            let point = len + self.exponent;
            if point > 0 {
                let (whole, fraction) = self.digits.split_at(point as usize);
                format!("{whole}.{fraction}")
            } else {
                format!("0.{}{}", "0".repeat((-point) as usize), self.digits)
            }
        } else {
            let (first, rest) = self.digits.split_at(1);
            let rest = if rest.is_empty() {
                String::new()
            } else {
                format!(".{rest}")
            };
            format!("{first}{rest}E{magnitude}")
        };
        format!("{sign}{body}")
    }

    /// The number as a plain JSON number when an `i64`, `u64` or `f64` holds it exactly,
    /// else as a tagged decimal.
    pub fn to_json(&self) -> Value {
        let text = self.canonical_text();
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
        let exact_float = text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .filter(|f| Decimal::parse(&f.to_string()).as_ref() == Some(self))
            .and_then(Number::from_f64);
        match exact_float {
            Some(n) => Value::Number(n),
            None => tagged(text),
        }
    }
}

fn tagged(text: String) -> Value {
    let mut map = Map::new();
    map.insert(NUMBER_TAG.into(), Value::String(text));
    Value::Object(map)
}

/// The decimal text of a tagged decimal, if `value` is one.
pub fn tagged_text(value: &Value) -> Option<&str> {
    let map = value.as_object().filter(|m| m.len() == 1)?;
    map.get(NUMBER_TAG)?.as_str()
}

/// The decimal a JSON number or a tagged decimal stands for.
pub fn of_json(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => Decimal::parse(&n.to_string()),
        other => Decimal::parse(tagged_text(other)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_that_mean_the_same_parse_the_same() {
        for (a, b) in [
            ("1.50", "1.5"),
            ("1e3", "1000"),
            ("+7", "7"),
            ("0.000", "-0"),
            ("012.3400", "12.34"),
            ("1.5E-3", "0.0015"),
        ] {
            assert_eq!(Decimal::parse(a), Decimal::parse(b), "{a} = {b}");
        }
        assert_eq!(Decimal::parse(".inf"), None);
        assert_eq!(Decimal::parse("0x1f"), None);
        assert_eq!(Decimal::parse("1e"), None);
        assert_eq!(Decimal::parse("."), None);
        assert_eq!(Decimal::parse("1_000"), None);
        assert_eq!(Decimal::parse(".5"), Decimal::parse("0.5"));
        assert_eq!(Decimal::parse("5."), Decimal::parse("5"));
        // Exponents at the edge of i64 neither overflow nor allocate.
        assert_eq!(Decimal::parse("10e9223372036854775807"), None);
        assert_eq!(Decimal::parse("1e-9223372036854775807"), None);
        assert_eq!(Decimal::parse("1e999999999999999999999"), None);
        assert_eq!(Decimal::parse("1e-9223372036854775808"), None);
        let far = Decimal::parse("1e999999").expect("decimal");
        assert!(far.canonical_text().len() < 40);
    }

    #[test]
    fn what_a_float_holds_stays_a_number_and_the_rest_keeps_every_digit() {
        let json = |text: &str| Decimal::parse(text).expect("decimal").to_json();
        assert_eq!(json("42"), json!(42));
        assert_eq!(json("1.50"), json!(1.5));
        assert_eq!(json("1e3"), json!(1000));
        assert_eq!(json("18446744073709551615"), json!(18446744073709551615u64));
        // A float holds 1e22 exactly: it stays a number.
        assert_eq!(json("1e22"), json!(1e22));
        assert_eq!(
            json("12345678901234567.89"),
            json!({"$number": "12345678901234567.89"})
        );
        assert_eq!(
            json("12345678901234567890123"),
            json!({"$number": "12345678901234567890123"})
        );
        assert_eq!(json("0.1"), json!(0.1));
        // A float's shortest text is the decimal written: it holds it.
        assert_eq!(json("1E-130"), json!(1e-130));
        assert_eq!(
            json("-9.9999999999999999999999999999999999999E+125"),
            json!({"$number": "-9.9999999999999999999999999999999999999E125"})
        );
    }

    #[test]
    fn precision_and_magnitude_are_what_dynamodb_limits() {
        let d = Decimal::parse("12345678901234567.89").expect("decimal");
        assert_eq!((d.precision(), d.magnitude()), (19, 16));
        let d = Decimal::parse("0.00120").expect("decimal");
        assert_eq!((d.precision(), d.magnitude()), (2, -3));
        assert_eq!(of_json(&json!({"$number": "1.50"})), Decimal::parse("1.5"));
    }
}
