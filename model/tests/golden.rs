//! Runs the exported graph with native ONNX Runtime and compares its logits with the
//! golden values that `model/golden/make_golden.py` computed with transformers.

mod common;

use std::path::PathBuf;

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Golden {
    sample_stride: usize,
    cases: std::collections::BTreeMap<String, GoldenCase>,
}

#[derive(Deserialize)]
struct GoldenCase {
    ids: Vec<i64>,
    sampled_logits: Vec<f32>,
    top_ids: Vec<usize>,
    top_logits: Vec<f32>,
}

fn ort_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "ORT_DYLIB_PATH is not set; run `cargo xtask test`, or set it to a native ONNX Runtime 1.30 \
             library (libonnxruntime.so.1.30.0 from the PyPI onnxruntime wheel)"
        ),
    }
}

#[test]
fn exported_graph_matches_transformers() {
    let golden: Golden = serde_json::from_slice(
        &std::fs::read(common::repo_root().join("model/golden/tinystories-1m-standin.json"))
            .unwrap(),
    )
    .unwrap();

    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    let bundle = work.path().join("bundle");
    banter_model::export::export(&checkpoint, &bundle, None).unwrap();

    let environment = ort::init_from(ort_library())
        .unwrap()
        .with_telemetry(false)
        .build()
        .unwrap();
    let mut session = Session::builder(&environment)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_file(bundle.join("model.onnx"))
        .unwrap();

    let mut max_error = 0.0f32;
    for (name, case) in &golden.cases {
        let input = Tensor::from_array((
            [1usize, case.ids.len()],
            case.ids.clone().into_boxed_slice(),
        ))
        .unwrap();
        let outputs = session.run(ort::inputs!["input_ids" => input]).unwrap();
        let (shape, logits) = outputs["logits"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(shape.to_vec(), vec![1, 50257], "case {name}: logits shape");

        let sampled: Vec<f32> = logits
            .iter()
            .step_by(golden.sample_stride)
            .copied()
            .collect();
        assert_eq!(
            sampled.len(),
            case.sampled_logits.len(),
            "case {name}: sampled logit count"
        );
        for (index, (actual, expected)) in sampled.iter().zip(&case.sampled_logits).enumerate() {
            let error = (actual - expected).abs();
            max_error = max_error.max(error);
            assert!(
                error <= TOLERANCE,
                "case {name}: logit of id {} is {actual}, transformers gives {expected}",
                index * golden.sample_stride
            );
        }

        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        assert_eq!(
            &order[..case.top_ids.len()],
            case.top_ids.as_slice(),
            "case {name}: top-5 ids"
        );
        for (id, expected) in case.top_ids.iter().zip(&case.top_logits) {
            assert!(
                (logits[*id] - expected).abs() <= TOLERANCE,
                "case {name}: top logit of id {id}"
            );
        }
    }
    println!("max |logit - golden| = {max_error:e}");
}
