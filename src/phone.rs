//! Phone numbers: parsing and validation with libphonenumber (the
//! `phonenumber` port), the country a number belongs to, and the masked form
//! that is the only form of a number that may appear on a page or in a log
//! line.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

pub use phonenumber::country::Id as Country;

/// A number that libphonenumber accepts as valid, in E.164 form.
#[derive(Clone, PartialEq, Eq)]
pub struct Number {
    e164: String,
    country: Option<Country>,
}

/// Why a number cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not in E.164 form (\"+\", country code and number, at most 15 digits)")]
    NotE164,
    #[error("is not a valid phone number for its country code")]
    Invalid,
}

impl Number {
    /// Parses an E.164 number. The shape is checked first, so the parser
    /// only ever sees `+` and digits; phonenumber before 0.3.6 panicked on
    /// crafted input (CVE-2024-39697), and a panic that slipped through a
    /// later version is caught here rather than taking a request down.
    pub fn parse(v: &str) -> Result<Self, PhoneError> {
        if !is_e164(v) {
            return Err(PhoneError::NotE164);
        }
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            phonenumber::parse(None, v)
                .ok()
                .filter(phonenumber::is_valid)
                .map(|n| n.country().id())
        }));
        match parsed {
            Ok(Some(country)) => Ok(Self {
                e164: v.to_string(),
                country,
            }),
            _ => Err(PhoneError::Invalid),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The region libphonenumber assigns (ISO 3166-1 alpha-2). Note that it
    /// is precise: +44 7911 numbers are GG (Guernsey), not GB.
    pub fn country(&self) -> Option<Country> {
        self.country
    }

    /// The region's two-letter code, or "??" for numbers without one
    /// (international services such as +800).
    pub fn country_code(&self) -> &str {
        self.country.as_ref().map_or("??", |c| c.as_ref())
    }

    pub fn masked(&self) -> String {
        mask(&self.e164)
    }
}

impl fmt::Debug for Number {
    /// Never the whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({}, {})", self.masked(), self.country_code())
    }
}

/// A region code as written in configuration ("NL", "de").
pub fn country(code: &str) -> Option<Country> {
    if code.len() != 2 {
        return None;
    }
    Country::from_str(&code.to_ascii_uppercase()).ok()
}

/// `+`, a country code that does not start with 0, at most 15 digits in all
/// (ITU-T E.164 §6.1).
pub fn is_e164(v: &str) -> bool {
    let Some(digits) = v.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The last four digits behind asterisks: "***5678", as the guide advises
/// showing, so the user knows which phone to look at.
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_plus_country_code_and_up_to_fifteen_digits() {
        assert!(is_e164("+31612345678"));
        assert!(is_e164("+4915112345678"));
        assert!(!is_e164("31612345678"));
        assert!(!is_e164("+0612345678"));
        assert!(!is_e164("+3161234567890123"));
        assert!(!is_e164("+31 6 1234 5678"));
        assert!(!is_e164("+"));
    }

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask("+31612345678"), "***5678");
        assert_eq!(mask("+12"), "***12");
    }

    #[test]
    fn a_valid_number_knows_its_country() {
        let n = Number::parse("+4915112345678").unwrap();
        assert_eq!(n.country_code(), "DE");
        assert_eq!(Number::parse("+31612345678").unwrap().country_code(), "NL");
        assert_eq!(Number::parse("+33612345678").unwrap().country_code(), "FR");
        assert_eq!(Number::parse("+12015550123").unwrap().country_code(), "US");
        assert_eq!(format!("{n:?}"), "Number(***5678, DE)");
    }

    #[test]
    fn numbers_of_the_right_shape_but_impossible_for_their_country_are_refused() {
        assert_eq!(Number::parse("+3161234"), Err(PhoneError::Invalid));
        assert_eq!(Number::parse("+999123456789"), Err(PhoneError::Invalid));
        assert_eq!(Number::parse("0612345678"), Err(PhoneError::NotE164));
        assert_eq!(Number::parse("+31 612345678"), Err(PhoneError::NotE164));
    }

    #[test]
    fn country_codes_in_config_are_two_letters_in_any_case() {
        assert_eq!(country("nl"), Some(Country::NL));
        assert_eq!(country("GB"), Some(Country::GB));
        assert_eq!(country("XX"), None);
        assert_eq!(country("NLD"), None);
    }
}
