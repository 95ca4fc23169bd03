//! banter's tokenizer.json gives the same ids as the gpt-3-encoder npm package.

mod common;

use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

fn reference() -> Reference {
    let path = common::repo_root().join("tests/tokenizer/gpt2-reference.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn built_tokenizer() -> tokenizers::Tokenizer {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    tokenizers::Tokenizer::from_file(checkpoint.join("tokenizer.json")).unwrap()
}

#[test]
fn tokenizer_matches_gpt2_reference() {
    let tokenizer = built_tokenizer();
    let reference = reference();
    assert!(
        reference.cases.len() >= 20,
        "reference has only {} cases",
        reference.cases.len()
    );

    for case in &reference.cases {
        let encoding = tokenizer.encode(case.text.as_str(), false).unwrap();
        assert_eq!(
            encoding.get_ids(),
            case.ids.as_slice(),
            "ids of {:?}",
            case.text
        );
    }
}

#[test]
fn tokenizer_decodes_reference_ids() {
    let tokenizer = built_tokenizer();
    for case in &reference().cases {
        let text = tokenizer.decode(&case.ids, false).unwrap();
        assert_eq!(text, case.text, "decoding {:?}", case.ids);
    }
}

#[test]
fn tokenizer_endoftext_text_is_not_special() {
    let tokenizer = built_tokenizer();
    let encoding = tokenizer.encode("<|endoftext|>", false).unwrap();
    assert!(
        !encoding.get_ids().contains(&50256),
        "ids {:?}",
        encoding.get_ids()
    );
    assert_eq!(tokenizer.token_to_id("<|endoftext|>"), Some(50256));
}

#[test]
fn tokenizer_json_settings() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("tokenizer.json")).unwrap()).unwrap();

    assert_eq!(json["added_tokens"], serde_json::json!([]));
    assert_eq!(json["pre_tokenizer"]["type"], "ByteLevel");
    assert_eq!(json["pre_tokenizer"]["add_prefix_space"], false);
    assert_eq!(json["pre_tokenizer"]["use_regex"], true);
    assert_eq!(json["decoder"]["type"], "ByteLevel");
    assert_eq!(json["model"]["type"], "BPE");
}
