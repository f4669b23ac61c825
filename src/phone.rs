//! Phone numbers: the E.164 shape check and the masked form that is the only
//! form of a number that may appear on a page or in a log line.

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
}
