//! GPT-2's byte-level BPE tokenizer as a Hugging Face `tokenizer.json`.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::Tokenizer;

use crate::ModelError;

/// Builds GPT-2's tokenizer from `vocab.json` and `merges.txt` and returns it as
/// pretty-printed `tokenizer.json` text.
///
/// The pre-tokenizer is ByteLevel with GPT-2's split regex and no prefix space, the
/// decoder is ByteLevel, and no added tokens are registered. So the literal text
/// `<|endoftext|>` encodes as ordinary pieces, not as the end-of-text id, which is what
/// the `gpt-3-encoder` npm package does too.
pub fn build_tokenizer_json(vocab: &Path, merges: &Path) -> Result<String, ModelError> {
    let tokenizer = build_tokenizer(vocab, merges)?;
    let mut text = tokenizer
        .to_string(true)
        .map_err(|source| ModelError::Tokenizer {
            path: vocab.to_path_buf(),
            reason: source.to_string(),
        })?;
    text.push('\n');
    Ok(text)
}

/// Builds GPT-2's tokenizer from `vocab.json` and `merges.txt`.
pub fn build_tokenizer(vocab: &Path, merges: &Path) -> Result<Tokenizer, ModelError> {
    for path in [vocab, merges] {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
            });
        }
    }

    let (Some(vocab_str), Some(merges_str)) = (vocab.to_str(), merges.to_str()) else {
        return Err(ModelError::Tokenizer {
            path: vocab.to_path_buf(),
            reason: "the path is not valid UTF-8".to_owned(),
        });
    };
    let model = BPE::from_file(vocab_str, merges_str)
        .build()
        .map_err(|source| ModelError::Tokenizer {
            path: vocab.to_path_buf(),
            reason: source.to_string(),
        })?;

    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_post_processor(Some(ByteLevel::new(false, false, true)));
    tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
    Ok(tokenizer)
}
