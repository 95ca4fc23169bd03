//! Runs exported graphs with native ONNX Runtime and compares their logits with the
//! golden values that `model/golden/make_golden.py` computed with transformers'
//! `GPTNeoForCausalLM` on the stand-in checkpoints.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use banter_bundle::{Layout, Manifest, WeightFormat};
use banter_model::standin::{write_standin, StandinSize};
use serde::Deserialize;

/// Maximum |logit − transformers| for float32 weights.
const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Golden {
    sample_stride: usize,
    cases: BTreeMap<String, GoldenCase>,
    decode: GoldenDecode,
}

#[derive(Deserialize)]
struct GoldenCase {
    ids: Vec<i64>,
    #[serde(flatten)]
    expected: GoldenLogits,
}

#[derive(Deserialize)]
struct GoldenDecode {
    ids: Vec<i64>,
    prefill: usize,
    sample_stride: usize,
    steps: Vec<GoldenLogits>,
}

#[derive(Deserialize)]
struct GoldenLogits {
    sampled_logits: Vec<f32>,
    top_ids: Vec<usize>,
    top_logits: Vec<f32>,
}

fn read_golden(file: &str) -> Golden {
    let path = common::repo_root().join("model/golden").join(file);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Exports the 1M stand-in into a fresh folder under `work`.
fn export_1m(work: &Path, layout: Layout, weights: WeightFormat) -> (PathBuf, Manifest) {
    export_standin(work, StandinSize::Tiny1M, layout, weights)
}

/// Exports a stand-in into a fresh folder under `work`, writing the checkpoint first if
/// `work` has none.
fn export_standin(
    work: &Path,
    size: StandinSize,
    layout: Layout,
    weights: WeightFormat,
) -> (PathBuf, Manifest) {
    let checkpoint = work.join("checkpoint");
    if !checkpoint.join("config.json").is_file() {
        write_standin(&checkpoint, size, &common::gpt2_dir()).unwrap();
    }
    let bundle = work.join(format!("{}-{}", layout.as_str(), weights.as_str()));
    let manifest = common::export_bundle(&checkpoint, &bundle, layout, weights);
    (bundle, manifest)
}

/// Checks `logits` against a golden record and returns the largest error seen.
fn check_logits(context: &str, logits: &[f32], stride: usize, expected: &GoldenLogits) -> f32 {
    let sampled: Vec<f32> = logits.iter().step_by(stride).copied().collect();
    assert_eq!(
        sampled.len(),
        expected.sampled_logits.len(),
        "{context}: sampled logit count"
    );

    let mut max_error = 0.0f32;
    for (index, (actual, golden)) in sampled.iter().zip(&expected.sampled_logits).enumerate() {
        let error = (actual - golden).abs();
        max_error = max_error.max(error);
        assert!(
            error <= TOLERANCE,
            "{context}: logit of id {} is {actual}, transformers gives {golden}",
            index * stride
        );
    }

    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    assert_eq!(
        &order[..expected.top_ids.len()],
        expected.top_ids.as_slice(),
        "{context}: top-5 ids"
    );
    for (id, golden) in expected.top_ids.iter().zip(&expected.top_logits) {
        let error = (logits[*id] - golden).abs();
        max_error = max_error.max(error);
        assert!(error <= TOLERANCE, "{context}: top logit of id {id}");
    }
    max_error
}

/// Checks that `top_values` / `top_ids` are the k largest logits, descending, ties by id.
fn check_top_k(context: &str, logits: &[f32], top: &(Vec<f32>, Vec<i64>), k: usize) {
    let (values, ids) = top;
    assert_eq!(values.len(), k, "{context}: top_values length");
    assert_eq!(ids.len(), k, "{context}: top_ids length");

    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let expected_ids: Vec<i64> = order[..k].iter().map(|&id| id as i64).collect();
    assert_eq!(ids, &expected_ids, "{context}: top_ids");
    for (value, id) in values.iter().zip(ids) {
        assert_eq!(
            *value, logits[*id as usize],
            "{context}: top value of id {id}"
        );
    }
}

/// Runs the golden prefill + single-token steps and returns the largest error.
fn check_decode(bundle: &Path, manifest: &Manifest, golden: &GoldenDecode) -> f32 {
    let mut decoder = common::Decoder::new(bundle, manifest);
    let mut max_error = 0.0f32;

    let first = decoder.step(&golden.ids[..golden.prefill]);
    max_error = max_error.max(check_logits(
        "prefill",
        &first.logits,
        golden.sample_stride,
        &golden.steps[0],
    ));
    if let Some(top) = &first.top {
        check_top_k("prefill", &first.logits, top, 5);
    }

    for (index, &id) in golden.ids[golden.prefill..].iter().enumerate() {
        let position = decoder.past_length();
        let step = decoder.step(&[id]);
        let context = format!("step {} (position {position})", index + 1);
        max_error = max_error.max(check_logits(
            &context,
            &step.logits,
            golden.sample_stride,
            &golden.steps[index + 1],
        ));
        if let Some(top) = &step.top {
            check_top_k(&context, &step.logits, top, 5);
        }
    }
    assert_eq!(decoder.past_length(), golden.ids.len());
    assert!(
        decoder.past_length() > 256,
        "the golden sequence must cross the 256-position local window"
    );
    max_error
}

#[test]
fn banter_decode_matches_transformers() {
    let golden = read_golden("tinystories-1m-standin.json");
    let work = tempfile::tempdir().unwrap();
    let (bundle, manifest) = export_1m(work.path(), Layout::Banter, WeightFormat::Fp32);

    let max_error = check_decode(&bundle, &manifest, &golden.decode);
    println!("banter layout, fp32: max |logit - transformers| = {max_error:e}");
}

#[test]
fn conventional_decode_matches_transformers() {
    let golden = read_golden("tinystories-1m-standin.json");
    let work = tempfile::tempdir().unwrap();
    let (bundle, manifest) = export_1m(work.path(), Layout::Conventional, WeightFormat::Fp32);

    let max_error = check_decode(&bundle, &manifest, &golden.decode);
    println!("conventional layout, fp32: max |logit - transformers| = {max_error:e}");
}

#[test]
fn decode_8m_matches_transformers() {
    let golden = read_golden("tinystories-8m-standin.json");
    let work = tempfile::tempdir().unwrap();

    for layout in [Layout::Banter, Layout::Conventional] {
        let (bundle, manifest) =
            export_standin(work.path(), StandinSize::Tiny8M, layout, WeightFormat::Fp32);
        assert_eq!(manifest.config.hidden_size, 256);
        let max_error = check_decode(&bundle, &manifest, &golden.decode);
        println!(
            "8M, {} layout, fp32: max |logit - transformers| = {max_error:e}",
            layout.as_str()
        );

        let mut decoder = common::Decoder::new(&bundle, &manifest);
        let case = &golden.cases["past_local_window"];
        let step = decoder.step(&case.ids);
        check_logits(
            "8M past_local_window",
            &step.logits,
            golden.sample_stride,
            &case.expected,
        );
    }
}

#[test]
fn prefill_cases_match_transformers() {
    let golden = read_golden("tinystories-1m-standin.json");
    let work = tempfile::tempdir().unwrap();

    for layout in [Layout::Banter, Layout::Conventional] {
        let (bundle, manifest) = export_1m(work.path(), layout, WeightFormat::Fp32);
        for (name, case) in &golden.cases {
            let mut decoder = common::Decoder::new(&bundle, &manifest);
            let step = decoder.step(&case.ids);
            let context = format!("{} layout, case {name}", layout.as_str());
            check_logits(&context, &step.logits, golden.sample_stride, &case.expected);
        }
    }
}

#[test]
fn banter_top_k_honours_k() {
    let work = tempfile::tempdir().unwrap();
    let (bundle, manifest) = export_1m(work.path(), Layout::Banter, WeightFormat::Int8);
    let vocab = manifest.config.vocab_size as usize;

    for k in [1, 40, vocab] {
        let mut decoder = common::Decoder::new(&bundle, &manifest);
        decoder.top_k = k as i64;
        let step = decoder.step(&[32, 582, 373]);
        let top = step.top.unwrap();
        check_top_k(&format!("k = {k}"), &step.logits, &top, k);
    }
}

/// Compares the int8 export with the fp32 export over the golden decode and prints the
/// agreement. Random stand-in weights give tiny top-1 margins, so the bar is loose.
#[test]
fn int8_decode_stays_close_to_fp32() {
    let golden = read_golden("tinystories-1m-standin.json").decode;
    let work = tempfile::tempdir().unwrap();
    let (fp32_bundle, fp32_manifest) = export_1m(work.path(), Layout::Banter, WeightFormat::Fp32);
    let (int8_bundle, int8_manifest) = export_1m(work.path(), Layout::Banter, WeightFormat::Int8);
    let mut reference = common::Decoder::new(&fp32_bundle, &fp32_manifest);
    let mut quantized = common::Decoder::new(&int8_bundle, &int8_manifest);

    let mut chunks = vec![&golden.ids[..golden.prefill]];
    chunks.extend(golden.ids[golden.prefill..].chunks(1));
    let (mut max_error, mut error_sum, mut count, mut top1_agree) = (0.0f32, 0.0f64, 0usize, 0);
    for chunk in &chunks {
        let expected = reference.step(chunk).logits;
        let actual = quantized.step(chunk).logits;
        for (a, b) in actual.iter().zip(&expected) {
            let error = (a - b).abs();
            max_error = max_error.max(error);
            error_sum += f64::from(error);
        }
        count += expected.len();
        let argmax = |logits: &[f32]| {
            (0..logits.len())
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
                .unwrap()
        };
        top1_agree += usize::from(argmax(&actual) == argmax(&expected));
    }

    let mean_error = error_sum / count as f64;
    println!(
        "int8 vs fp32 over {} steps: top-1 agreement {top1_agree}/{}, max |Δlogit| {max_error:e}, mean |Δlogit| {mean_error:e}",
        chunks.len(),
        chunks.len()
    );
    assert!(max_error < 0.05, "max |Δlogit| {max_error}");
    assert!(mean_error < 0.005, "mean |Δlogit| {mean_error}");
    assert!(
        top1_agree * 10 >= chunks.len() * 9,
        "top-1 agreement {top1_agree}/{}",
        chunks.len()
    );
}

#[test]
fn banter_prefill_reaches_max_position() {
    let work = tempfile::tempdir().unwrap();
    let (bundle, manifest) = export_1m(work.path(), Layout::Banter, WeightFormat::Int8);
    let max_positions = manifest.config.max_position_embeddings as usize;
    let ids: Vec<i64> = (0..max_positions as i64 - 1)
        .map(|i| (i * 7919) % 50257)
        .collect();

    let mut decoder = common::Decoder::new(&bundle, &manifest);
    let prefill = decoder.step(&ids);
    assert!(prefill.logits.iter().all(|value| value.is_finite()));

    // The last position the position table covers.
    let last = decoder.step(&[50256]);
    assert_eq!(decoder.past_length(), max_positions);
    assert!(last.logits.iter().all(|value| value.is_finite()));
}
