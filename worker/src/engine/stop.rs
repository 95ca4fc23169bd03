//! The stop rule: a spoken line is the first complete sentence of the continuation.
//!
//! A sentence ends at `.`, `!` or `?` once the text contains at least one letter or digit,
//! so a continuation that opens with a stray `.` keeps going. A run of enders (`?!`,
//! `...`) stays with its sentence. Every `"` is removed, because the prompt ends inside
//! an open quote and the model closes it wherever it likes.
//!
//! NOTE: an abbreviation or a decimal point (`Mr.`, `3.5`) also ends the sentence; the
//! TinyStories register rarely has either.

fn is_ender(c: char) -> bool {
    matches!(c, '.' | '!' | '?')
}

/// Returns the byte offset just past the first complete sentence of `text`, or `None`
/// while no sentence has ended.
pub fn sentence_end(text: &str) -> Option<usize> {
    let mut seen_word = false;
    let mut chars = text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        if c.is_alphanumeric() {
            seen_word = true;
        } else if seen_word && is_ender(c) {
            let mut end = offset + c.len_utf8();
            while let Some(&(next_offset, next)) = chars.peek() {
                if !is_ender(next) {
                    break;
                }
                end = next_offset + next.len_utf8();
                chars.next();
            }
            return Some(end);
        }
    }
    None
}

/// Cuts a continuation to the spoken line: its first complete sentence (or all of it when
/// no sentence has ended), without `"`, without leading whitespace or stray enders, and
/// without trailing whitespace.
pub fn spoken_line(continuation: &str) -> String {
    let unquoted: String = continuation.chars().filter(|&c| c != '"').collect();
    let cut = match sentence_end(&unquoted) {
        Some(end) => &unquoted[..end],
        None => unquoted.as_str(),
    };
    cut.trim_start_matches(|c: char| c.is_whitespace() || is_ender(c))
        .trim_end()
        .to_owned()
}

/// Returns the part of the spoken line that later tokens cannot change, for streaming.
///
/// It is [`spoken_line`] of the continuation so far, less any trailing whitespace (which
/// is trimmed unless more text follows) and trailing U+FFFD (which may be the first bytes
/// of a character split across byte-level tokens). Each result is a prefix of every later
/// one and of the final [`spoken_line`], so the differences between successive results
/// concatenate to the final line.
pub fn stable_prefix(continuation: &str) -> String {
    let line = spoken_line(continuation);
    line.trim_end_matches(|c: char| c.is_whitespace() || c == char::REPLACEMENT_CHARACTER)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_line_table() {
        let cases = [
            ("I like the ball. Then he ran.", "I like the ball."),
            ("Yes!\" said Tim. \"Come here.", "Yes!"),
            ("Where is it?\" she asked.", "Where is it?"),
            (
                " We can play\" and they played all day.",
                "We can play and they played all day.",
            ),
            ("Really?! I can't believe it.", "Really?!"),
            ("Well... maybe. No.", "Well..."),
            ("\"Hello,\" he said. \"How are you?\"", "Hello, he said."),
            (". Oh no. Go.", "Oh no."),
            ("I am happy", "I am happy"),
            ("", ""),
            ("\"\"", ""),
            ("Ça va très bien. Merci.", "Ça va très bien."),
            ("I love 🐶 dogs! Woof.", "I love 🐶 dogs!"),
            ("Let's go\nto the park. Now.", "Let's go\nto the park."),
        ];
        for (continuation, expected) in cases {
            assert_eq!(
                spoken_line(continuation),
                expected,
                "continuation {continuation:?}"
            );
        }
    }

    #[test]
    fn stable_prefix_grows_to_line() {
        let pieces = [
            "\"",
            " ",
            ".",
            "Well",
            ",",
            " I",
            " \u{FFFD}",
            "\u{1F436}",
            " like",
            " it",
            "!\"",
            " Then",
        ];
        let mut continuation = String::new();
        let mut streamed = String::new();
        for piece in pieces {
            let held = continuation.clone();
            continuation = if piece == "\u{1F436}" {
                // The emoji completes the bytes that decoded as U+FFFD in the previous step.
                held.trim_end_matches('\u{FFFD}').to_owned() + piece
            } else {
                held + piece
            };
            let prefix = stable_prefix(&continuation);
            assert!(
                prefix.starts_with(&streamed),
                "{prefix:?} does not extend {streamed:?}"
            );
            streamed = prefix;
        }
        let line = spoken_line(&continuation);
        assert!(line.starts_with(&streamed));
        assert_eq!(line, "Well, I \u{1F436} like it!");
    }

    #[test]
    fn stable_prefix_holds_back_tail() {
        assert_eq!(stable_prefix("Hi there "), "Hi there");
        assert_eq!(stable_prefix("Hi \u{FFFD}"), "Hi");
        assert_eq!(stable_prefix(" . "), "");
        assert_eq!(stable_prefix("Go. More"), "Go.");
    }

    #[test]
    fn sentence_end_needs_a_word() {
        assert_eq!(sentence_end("."), None);
        assert_eq!(sentence_end(" ?!"), None);
        assert_eq!(sentence_end("Hi."), Some(3));
        assert_eq!(sentence_end("Hi?!"), Some(4));
        assert_eq!(sentence_end("Hi there"), None);
    }
}
