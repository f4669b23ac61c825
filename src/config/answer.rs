//! Validation of how an `[[apps]]` table reads its who-am-I answer
//! (`userinfo_format` and the keys each format takes) and where the phone
//! number comes from (`phone`, the answer, `users_file`).

use http::HeaderName;
use regex::bytes::RegexBuilder;

use super::raw::{RawApp, S};
use super::validate::{Ctx, Result};
use super::{Pattern, Userinfo};
use crate::phone;

/// Compiled size allowed for a pattern: far more than a user-name pattern
/// needs, far less than a pattern that would slow every identity lookup.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Ctx<'_> {
    pub(super) fn userinfo(&self, app: &S<RawApp>) -> Result<Userinfo> {
        let a = app.get_ref();
        let format = match &a.userinfo_format {
            None => "json",
            Some(f) => match f.get_ref().trim() {
                "json" => "json",
                "html" => "html",
                "header" => "header",
                other => {
                    return Err(self.at(
                        f,
                        "apps.userinfo_format",
                        format!("unknown format {other:?}; use \"json\" (the default), \"html\" or \"header\""),
                    ));
                }
            },
        };
        // Each key reads one kind of answer; a key of another kind would be
        // silently ignored, and the app left without the rule it was given.
        let keys: [(&str, &str, &Option<S<String>>); 7] = [
            ("user_pointer", "json", &a.user_pointer),
            ("phone_pointer", "json", &a.phone_pointer),
            ("anonymous_pointer", "json", &a.anonymous_pointer),
            ("user_pattern", "html", &a.user_pattern),
            ("phone_pattern", "html", &a.phone_pattern),
            ("user_header", "header", &a.user_header),
            ("phone_header", "header", &a.phone_header),
        ];
        for (key, needs, value) in keys {
            if let Some(v) = value
                && needs != format
            {
                return Err(self.at(
                    v,
                    &format!("apps.{key}"),
                    format!(
                        "reads {} answers and needs userinfo_format = \"{needs}\"; this app's format is \"{format}\"{}",
                        needs.to_uppercase(),
                        match format {
                            "json" => " (the default): use user_pointer and phone_pointer",
                            "html" => ": use user_pattern and phone_pattern",
                            _ => ": use user_header and phone_header",
                        }
                    ),
                ));
            }
        }
        let required = |v, key, example| self.required(app, format, v, key, example);
        Ok(match format {
            "json" => Userinfo::Json {
                user_pointer: self.pointer(
                    required(&a.user_pointer, "user_pointer", "\"/username\"")?,
                    "apps.user_pointer",
                )?,
                phone_pointer: a
                    .phone_pointer
                    .as_ref()
                    .map(|p| self.pointer(p, "apps.phone_pointer"))
                    .transpose()?,
                anonymous_pointer: a
                    .anonymous_pointer
                    .as_ref()
                    .map(|p| self.pointer(p, "apps.anonymous_pointer"))
                    .transpose()?,
            },
            "html" => Userinfo::Html {
                user_pattern: self.pattern(
                    required(
                        &a.user_pattern,
                        "user_pattern",
                        "'Welcome, <strong>([^<]+)</strong>'",
                    )?,
                    "apps.user_pattern",
                )?,
                phone_pattern: a
                    .phone_pattern
                    .as_ref()
                    .map(|p| self.pattern(p, "apps.phone_pattern"))
                    .transpose()?,
            },
            _ => Userinfo::Header {
                user_header: self.header_name(
                    required(&a.user_header, "user_header", "\"X-Remote-User\"")?,
                    "apps.user_header",
                )?,
                phone_header: a
                    .phone_header
                    .as_ref()
                    .map(|h| self.header_name(h, "apps.phone_header"))
                    .transpose()?,
            },
        })
    }

    /// The fixed `phone`, after checking that the app has exactly one
    /// unambiguous way to find each user's number.
    pub(super) fn phone_source(
        &self,
        app: &S<RawApp>,
        userinfo: &Userinfo,
        has_users_file: bool,
    ) -> Result<Option<String>> {
        let a = app.get_ref();
        let answer_key = match userinfo {
            Userinfo::Json { .. } => "phone_pointer",
            Userinfo::Html { .. } => "phone_pattern",
            Userinfo::Header { .. } => "phone_header",
        };
        let Some(v) = &a.phone else {
            if !userinfo.has_phone() && !has_users_file {
                return Err(self.at(
                    app,
                    &format!("apps.{answer_key}"),
                    format!("no phone source; set {answer_key} (where the who-am-I answer has the number), users_file (a number per user), or phone (one number for every user of a single-owner app)"),
                ));
            }
            return Ok(None);
        };
        let n = v.get_ref().trim();
        if let Err(e) = phone::Number::parse(n) {
            return Err(self.at(
                v,
                "apps.phone",
                format!("{e}; write it in E.164: \"+\" then country code and number, e.g. \"+31612345678\""),
            ));
        }
        // Which number would a user listed in the file, or one whose answer
        // carries a number, get? Either answer surprises someone, so the
        // file asks for one source.
        if has_users_file {
            return Err(self.at(
                v,
                "apps.phone",
                "ambiguous with users_file: phone sends every user's code to one number, users_file to each user's own; keep one of them",
            ));
        }
        if userinfo.has_phone() {
            return Err(self.at(
                v,
                "apps.phone",
                format!("ambiguous with {answer_key}: phone sends every user's code to one number, {answer_key} to the number the app gives for each user; keep one of them"),
            ));
        }
        Ok(Some(n.to_string()))
    }

    fn required<'v>(
        &self,
        app: &S<RawApp>,
        format: &str,
        v: &'v Option<S<String>>,
        key: &str,
        example: &str,
    ) -> Result<&'v S<String>> {
        v.as_ref().ok_or_else(|| {
            self.at(
                app,
                &format!("apps.{key}"),
                format!(
                    "missing; userinfo_format = \"{format}\" needs {key}, e.g. {key} = {example}"
                ),
            )
        })
    }

    fn pattern(&self, v: &S<String>, key: &str) -> Result<Pattern> {
        let source = v.get_ref();
        let regex = RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                let why = match &e {
                    // The syntax error's last line says what is wrong; the
                    // lines above it draw the pattern with a caret.
                    regex::Error::Syntax(text) => text
                        .lines()
                        .rev()
                        .find(|l| l.starts_with("error:"))
                        .map_or_else(
                            || text.clone(),
                            |l| l.trim_start_matches("error:").trim().to_string(),
                        ),
                    regex::Error::CompiledTooBig(_) => {
                        "it is too large once compiled; make it simpler".to_string()
                    }
                    other => other.to_string(),
                };
                self.at(
                    v,
                    key,
                    format!("{source:?} is not a regular expression: {why}"),
                )
            })?;
        let groups = regex.captures_len() - 1;
        if groups != 1 {
            return Err(self.at(
                v,
                key,
                format!("{source:?} has {groups} capture groups; it needs exactly one, around the value (write other groups as (?:...)), e.g. 'Welcome, <strong>([^<]+)</strong>'"),
            ));
        }
        Ok(Pattern {
            source: source.clone(),
            regex,
        })
    }

    fn header_name(&self, v: &S<String>, key: &str) -> Result<HeaderName> {
        let text = v.get_ref().trim();
        HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
            self.at(
                v,
                key,
                format!("{text:?} is not a header field name; write e.g. \"X-Remote-User\""),
            )
        })
    }
}
