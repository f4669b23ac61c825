//! Code verification (`OtpStore::verify`) with arbitrary submissions.
//!
//! One store holds one issued code. Each input is tried as is, and also
//! spliced into, prefixed to and appended to the real code, so that the
//! fuzzer works near the code it cannot know.
//!
//! Properties: no panic; `Correct` only for the code itself (after the
//! trimming of surrounding whitespace that `verify` does); the code itself
//! is `Correct`; anything not `length` digits is `Malformed`; a code is
//! accepted at most once.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use otpgate::keys::Keys;
use otpgate::otp::{Code, OtpStore, Verdict};

const KEY: [u8; 32] = [5u8; 32];
const LENGTH: u32 = 6;

struct Fixture {
    store: OtpStore,
    code: Code,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = Keys::derive(&[7u8; 64]);
        let store = OtpStore::new(&keys, Duration::from_secs(3600), 5, LENGTH);
        let code = store
            .issue_if_none(&KEY)
            .expect("a fresh store issues a code");
        Fixture { store, code }
    })
}

fn judge(input: &str, verdict: Verdict, code: &str) {
    let trimmed = input.trim();
    if verdict == Verdict::Correct {
        assert_eq!(trimmed, code, "{input:?} was accepted for another code");
    }
    let well_formed =
        trimmed.len() == LENGTH as usize && trimmed.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        assert_eq!(verdict, Verdict::Malformed, "{input:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let code = f.code.as_str();

    let mut spliced: Vec<char> = code.chars().collect();
    for (i, c) in s.chars().take(spliced.len()).enumerate() {
        spliced[i] = c;
    }
    let spliced: String = spliced.into_iter().collect();
    let candidates = [
        s.to_string(),
        spliced,
        format!("{code}{s}"),
        format!("{s}{code}"),
    ];
    for c in &candidates {
        f.store.install(&KEY, &f.code);
        let verdict = f.store.verify(&KEY, c);
        judge(c, verdict, code);
        if c.trim() == code {
            assert_eq!(
                verdict,
                Verdict::Correct,
                "the code itself, {c:?}, was refused"
            );
            assert_eq!(
                f.store.verify(&KEY, c),
                Verdict::NoCode,
                "a used code was accepted again"
            );
        }
    }

    // A run of guesses at one code, one per line, without a new code between.
    f.store.install(&KEY, &f.code);
    let mut accepted = 0;
    for guess in s.split('\n') {
        let verdict = f.store.verify(&KEY, guess);
        judge(guess, verdict, code);
        accepted += usize::from(verdict == Verdict::Correct);
    }
    assert!(accepted <= 1, "one code was accepted {accepted} times");
});
