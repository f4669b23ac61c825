//! Phone-number handling: `phone::is_e164` and `phone::mask`.
//!
//! Properties: no panic; a mask shows at most four digits, all of them the
//! number's last ones; an E.164 number is '+' and 2 to 15 ASCII digits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate::phone;

fuzz_target!(|data: &[u8]| {
    let Ok(number) = std::str::from_utf8(data) else {
        return;
    };
    if phone::is_e164(number) {
        let digits = &number[1..];
        assert!(number.starts_with('+'));
        assert!((2..=15).contains(&digits.len()), "{number:?}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{number:?}");
        assert!(!digits.starts_with('0'), "{number:?}");
    }
    let masked = phone::mask(number);
    let shown: Vec<char> = masked.chars().filter(char::is_ascii_digit).collect();
    assert!(
        shown.len() <= 4,
        "mask({number:?}) = {masked:?} shows more than 4 digits"
    );
    assert!(masked.starts_with("***"), "mask({number:?}) = {masked:?}");
    let all: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    assert!(
        all.ends_with(&shown),
        "mask({number:?}) = {masked:?}: not the last digits"
    );
    // Nothing but the asterisks and the digits: no other part of the input leaks.
    assert_eq!(
        masked.len(),
        3 + shown.len(),
        "mask({number:?}) = {masked:?}"
    );
});
