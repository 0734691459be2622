//! Keeping what a message repeats of the input short: an error about a
//! 20,000-character value should name the field and show the start of the
//! value, not print all of it.

/// Quoted values longer than this many characters are shortened.
pub const MAX_QUOTED: usize = 80;
/// Unquoted words (names, paths) longer than this are shortened.
pub const MAX_WORD: usize = 120;
/// How many characters of a shortened value are kept.
const KEEP: usize = 40;

/// `message` with every double-quoted value longer than [`MAX_QUOTED`]
/// characters and every other word longer than [`MAX_WORD`] cut to its
/// first characters and its length, e.g. `"xxxx…" (20000 characters)`.
pub fn shorten(message: &str) -> String {
    if message.len() <= MAX_QUOTED {
        return message.to_string();
    }
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len().min(4096));
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '"' {
            // Find the closing quote, skipping escaped characters.
            let mut end = index + 1;
            while end < chars.len() && chars[end] != '"' {
                if chars[end] == '\\' {
                    end += 1;
                }
                end += 1;
            }
            let end = end.min(chars.len());
            let inner = &chars[index + 1..end];
            if inner.len() > MAX_QUOTED {
                out.push('"');
                out.extend(&inner[..KEEP]);
                out.push_str(&format!("…\" ({} characters)", inner.len()));
            } else {
                out.extend(&chars[index..(end + 1).min(chars.len())]);
            }
            index = end + 1;
        } else if c.is_whitespace() {
            out.push(c);
            index += 1;
        } else {
            let mut end = index;
            while end < chars.len() && !chars[end].is_whitespace() && chars[end] != '"' {
                end += 1;
            }
            let word = &chars[index..end];
            if word.len() > MAX_WORD {
                out.extend(&word[..KEEP]);
                out.push_str(&format!("…({} characters)", word.len()));
                // Keep the punctuation that separates it from what follows.
                if let Some(last) = word.last().filter(|last| matches!(last, ':' | ',' | ';')) {
                    out.push(*last);
                }
            } else {
                out.extend(word);
            }
            index = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_quoted_values_and_words_are_cut_and_measured() {
        let value = "x".repeat(20_000);
        let message = format!("apiVersion: \"{value}\" is not supported; use skiff.dev/v1alpha1");
        let short = shorten(&message);
        assert!(short.len() < 200, "{short}");
        assert!(short.contains("(20000 characters)"), "{short}");
        assert!(
            short.ends_with("is not supported; use skiff.dev/v1alpha1"),
            "{short}"
        );

        let name = "n".repeat(500);
        let short = shorten(&format!(
            "instancegroup/{name}: spec.minSize: must be 0 or more"
        ));
        assert!(short.contains("(515 characters):"), "{short}");
        assert!(
            short.ends_with("spec.minSize: must be 0 or more"),
            "{short}"
        );
    }

    #[test]
    fn short_messages_are_unchanged() {
        for message in [
            "spec.subnets[0].cidr: \"10.0.0.0/33\" is not a CIDR",
            "document 2: kind: missing; use Cluster or InstanceGroup",
            "an \"unterminated quote",
        ] {
            assert_eq!(shorten(message), message);
        }
    }

    proptest! {
        #[test]
        fn shortening_never_lengthens_and_bounds_unquoted_words(message in ".{0,3000}") {
            let short = shorten(&message);
            prop_assert!(short.chars().count() <= message.chars().count());
            if !message.contains('"') {
                for word in short.split_whitespace() {
                    prop_assert!(word.chars().count() < MAX_WORD + 40, "{word}");
                }
            }
        }
    }
}
