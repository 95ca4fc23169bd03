//! The prompt that frames what a character heard.
//!
//! TinyStories models continue stories, so the heard words are placed inside a short
//! narrative whose next token starts the answer. Dialogue formats such as
//! `you: X\nhim:` make these models emit a newline at once, so they are not used.

/// Builds the prompt for `heard`, used verbatim.
pub fn build_prompt(heard: &str) -> String {
    format!("A man was asked \"{heard}\". He smiled and said, \"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_exact_text() {
        assert_eq!(
            build_prompt("Where is the ball?"),
            "A man was asked \"Where is the ball?\". He smiled and said, \""
        );
    }
}
