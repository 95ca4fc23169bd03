//! Native ONNX Runtime timing of the benchmark's graph variants, run by `cargo xtask bench`.
//!
//! ```sh
//! ORT_DYLIB_PATH=target/onnxruntime/libonnxruntime.so.1.30.0 \
//!     cargo run --release -p banter-model --example decode_bench -- \
//!     --site-model target/site/model --bench-dir target/bench --rounds 8 \
//!     --json target/bench/native.json
//! ```
//!
//! Every variant runs the same minimal loop that `tests/bench/graphs.mjs` runs in Chromium:
//! a prefill of the prompt, then one decoding step per new token, greedy (candidate 0),
//! until the line has [`NEW_TOKENS`] tokens. The candidates are a top-40 over the last
//! position's logits for the conventional layout and the graph's own `top_k` output for
//! banter's layout. The variants alternate within each round, and each session uses one
//! intra-op thread.
//!
//! The `prototype` variant re-runs the conventional int8 graph on the whole sequence with
//! an empty KV cache each step, as the prototype's input_ids-only graph did. It is not the
//! prototype's own file, which was 15.7 MB with a `MatMulInteger` LM head. The conventional
//! graph computes logits for every position, so `prototype` also pays the LM head for the
//! whole sequence each step. `prototype-last` re-runs banter's graph the same way, which
//! computes the head for the last position only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use banter_bundle::{Layout, Manifest};
use ort::environment::Environment;
use ort::session::{OutputSelector, RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor};

/// Prompt of every line: the worker's template with `Where is the ball?` as the heard text.
const PROMPT: &str = "A man was asked \"Where is the ball?\". He smiled and said, \"";

/// New tokens per line. The first comes from the prefill, each later one from a decoding
/// step, so a line is one prefill and `NEW_TOKENS - 1` decoding steps, as in the worker.
const NEW_TOKENS: usize = 60;

/// Candidates per step, the worker's default top-k.
const TOP_K: usize = 40;

/// Feeding scheme of a variant: the whole sequence or one token per step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The whole sequence every step, with an empty KV cache.
    WholeSequence,
    /// The prompt once, then one token per step with the KV cache of earlier steps.
    KvCache,
}

/// One benchmarked graph and its session.
struct Variant {
    name: &'static str,
    mode: Mode,
    manifest: Manifest,
    file_bytes: u64,
    session: Session,
    options: RunOptions<ort::session::HasSelectedOutputs>,
    /// Mean decoding step of each line, prefill excluded.
    step_ms: Vec<f64>,
    line_ms: Vec<f64>,
    /// New tokens of the last line, to check that the variants decode the same greedy line.
    tokens: Vec<i64>,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("decode_bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let arguments = Arguments::parse(std::env::args().skip(1))?;
    let environment = environment()?;

    let bench = &arguments.bench_dir;
    let site_model = &arguments.site_model;
    let plan: [(&'static str, Layout, Mode, PathBuf); 6] = [
        (
            "prototype",
            Layout::Conventional,
            Mode::WholeSequence,
            bench.join("conventional-int8"),
        ),
        (
            "prototype-last",
            Layout::Banter,
            Mode::WholeSequence,
            site_model.clone(),
        ),
        (
            "conventional",
            Layout::Conventional,
            Mode::KvCache,
            bench.join("conventional-int8"),
        ),
        (
            "conventional-fp32",
            Layout::Conventional,
            Mode::KvCache,
            bench.join("conventional-fp32"),
        ),
        ("banter", Layout::Banter, Mode::KvCache, site_model.clone()),
        (
            "banter-fp32",
            Layout::Banter,
            Mode::KvCache,
            bench.join("banter-fp32"),
        ),
    ];
    let mut variants = Vec::new();
    for (name, layout, mode, dir) in plan {
        variants.push(open_variant(&environment, name, layout, mode, &dir)?);
    }

    let prompt_ids = encode_prompt(&arguments.site_model)?;
    println!(
        "native ONNX Runtime ({}), 1 intra-op thread, {} rounds, prompt {} tokens, {NEW_TOKENS} new tokens per line (greedy)",
        arguments.ort_library.display(),
        arguments.rounds,
        prompt_ids.len()
    );

    // One untimed line per variant, so that first-run allocations do not count.
    for variant in &mut variants {
        decode_line(variant, &prompt_ids)?;
        variant.step_ms.clear();
        variant.line_ms.clear();
    }
    for _ in 0..arguments.rounds {
        for variant in &mut variants {
            decode_line(variant, &prompt_ids)?;
        }
    }

    print_table(&variants);
    if let Some(path) = &arguments.json {
        write_json(path, &variants, arguments.rounds)?;
    }
    Ok(())
}

/// Command-line options.
struct Arguments {
    site_model: PathBuf,
    bench_dir: PathBuf,
    rounds: usize,
    ort_library: PathBuf,
    /// File to write the medians to, as JSON.
    json: Option<PathBuf>,
}

impl Arguments {
    fn parse(mut arguments: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut site_model = PathBuf::from("target/site/model");
        let mut bench_dir = PathBuf::from("target/bench");
        let mut rounds = 8;
        let mut json = None;
        while let Some(argument) = arguments.next() {
            let mut value = || {
                arguments
                    .next()
                    .ok_or_else(|| format!("{argument} needs a value"))
            };
            match argument.as_str() {
                "--site-model" => site_model = PathBuf::from(value()?),
                "--bench-dir" => bench_dir = PathBuf::from(value()?),
                "--json" => json = Some(PathBuf::from(value()?)),
                "--rounds" => {
                    let text = value()?;
                    rounds = text
                        .parse()
                        .ok()
                        .filter(|&rounds| rounds > 0)
                        .ok_or_else(|| {
                            format!("--rounds {text:?} is not a positive integer")
                        })?;
                }
                other => {
                    return Err(format!(
                        "unknown option {other:?}; expected --site-model DIR, --bench-dir DIR, --rounds N or --json FILE"
                    ))
                }
            }
        }

        let ort_library = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .ok_or(
                "ORT_DYLIB_PATH is not set; set it to a native ONNX Runtime 1.30 library \
                 (target/onnxruntime/libonnxruntime.so.1.30.0 after `cargo xtask test`)",
            )?;
        Ok(Arguments {
            site_model,
            bench_dir,
            rounds,
            ort_library,
            json,
        })
    }
}

fn environment() -> Result<Environment, String> {
    let library = std::env::var_os("ORT_DYLIB_PATH").unwrap_or_default();
    let load_error = |error: &dyn std::fmt::Display| {
        format!(
            "could not load ONNX Runtime from {}: {error}",
            Path::new(&library).display()
        )
    };
    ort::init_from(&library)
        .map_err(|error| load_error(&error))?
        .with_telemetry(false)
        .build()
        .map_err(|error| load_error(&error))
}

fn open_variant(
    environment: &Environment,
    name: &'static str,
    expected_layout: Layout,
    mode: Mode,
    dir: &Path,
) -> Result<Variant, String> {
    let manifest_path = dir.join("manifest.json");
    let manifest_bytes = std::fs::read(&manifest_path).map_err(|error| {
        format!(
            "could not read {}: {error}; run `cargo xtask bench`, which exports it",
            manifest_path.display()
        )
    })?;
    let manifest = Manifest::from_json(&manifest_bytes)
        .map_err(|error| format!("invalid manifest {}: {error}", manifest_path.display()))?;
    if manifest.layout != expected_layout {
        return Err(format!(
            "{} has the {} layout, expected {} for the {name} variant",
            dir.display(),
            manifest.layout.as_str(),
            expected_layout.as_str()
        ));
    }

    let graph = dir.join("model.onnx");
    let file_bytes = std::fs::metadata(&graph)
        .map_err(|error| format!("could not stat {}: {error}", graph.display()))?
        .len();
    let load_error =
        |error: &dyn std::fmt::Display| format!("could not load {}: {error}", graph.display());
    let mut builder = Session::builder(environment)
        .map_err(|error| load_error(&error))?
        .with_intra_threads(1)
        .map_err(|error| load_error(&error))?;
    for (key, value) in &manifest.session_options {
        builder = builder
            .with_config_entry(key, value)
            .map_err(|error| load_error(&error))?;
    }
    let session = builder
        .commit_from_file(&graph)
        .map_err(|error| load_error(&error))?;

    let selector = match (manifest.layout, mode) {
        (Layout::Banter, Mode::WholeSequence) => OutputSelector::no_default()
            .with("top_values")
            .with("top_ids"),
        (Layout::Banter, Mode::KvCache) => OutputSelector::no_default()
            .with("top_values")
            .with("top_ids")
            .with("present"),
        (Layout::Conventional, Mode::WholeSequence) => OutputSelector::no_default().with("logits"),
        (Layout::Conventional, Mode::KvCache) => OutputSelector::default(),
    };
    let options = RunOptions::new()
        .map_err(|error| load_error(&error))?
        .with_outputs(selector);

    Ok(Variant {
        name,
        mode,
        manifest,
        file_bytes,
        session,
        options,
        step_ms: Vec::new(),
        line_ms: Vec::new(),
        tokens: Vec::new(),
    })
}

fn encode_prompt(bundle: &Path) -> Result<Vec<i64>, String> {
    let path = bundle.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&path)
        .map_err(|error| format!("could not load {}: {error}", path.display()))?;
    let encoding = tokenizer
        .encode(PROMPT, false)
        .map_err(|error| format!("could not encode the prompt: {error}"))?;
    Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
}

fn tensor_error(error: ort::Error) -> String {
    format!("could not build an input tensor: {error}")
}

/// Decodes one line of [`NEW_TOKENS`] tokens and records its time and the mean time of its
/// decoding steps (the prefill excluded).
fn decode_line(variant: &mut Variant, prompt_ids: &[i64]) -> Result<(), String> {
    let layers = variant.manifest.config.num_layers as usize;
    let heads = variant.manifest.config.num_heads as usize;
    let head_size =
        (variant.manifest.config.hidden_size / variant.manifest.config.num_heads) as usize;
    let layout = variant.manifest.layout;

    let mut sequence: Vec<i64> = prompt_ids.to_vec();
    let mut past_length = 0;
    let mut past: Vec<DynValue> = Vec::new();
    let mut feed: Vec<i64> = prompt_ids.to_vec();

    let mut prefill_ms = 0.0;
    let line_started = Instant::now();
    for step in 0..NEW_TOKENS {
        let step_started = Instant::now();
        if variant.mode == Mode::WholeSequence {
            feed = sequence.clone();
            past_length = 0;
        }
        let count = feed.len();
        let positions: Vec<i64> = (past_length as i64..(past_length + count) as i64).collect();

        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array(([1, count], feed.clone()))
                    .map_err(tensor_error)?
                    .into(),
            ),
            (
                "position_ids".into(),
                Tensor::from_array(([1, count], positions))
                    .map_err(tensor_error)?
                    .into(),
            ),
        ];
        match layout {
            Layout::Banter => {
                let past_value = match past.pop() {
                    Some(value) => value,
                    None => {
                        Tensor::from_array(([2 * layers, heads, 0, head_size], Vec::<f32>::new()))
                            .map_err(tensor_error)?
                            .into_dyn()
                    }
                };
                inputs.push(("past".into(), past_value.into()));
                inputs.push((
                    "top_k".into(),
                    Tensor::from_array(([1], vec![TOP_K as i64]))
                        .map_err(tensor_error)?
                        .into(),
                ));
            }
            Layout::Conventional => {
                let mut carried = std::mem::take(&mut past).into_iter();
                for index in 0..2 * layers {
                    let kind = if index % 2 == 0 { "key" } else { "value" };
                    let value = match (variant.mode, carried.next()) {
                        (Mode::KvCache, Some(value)) => value,
                        _ => Tensor::from_array(([1, heads, 0, head_size], Vec::<f32>::new()))
                            .map_err(tensor_error)?
                            .into_dyn(),
                    };
                    inputs.push((
                        format!("past_key_values.{}.{kind}", index / 2),
                        value.into(),
                    ));
                }
            }
        }

        let mut outputs = variant
            .session
            .run_with_options(inputs, &variant.options)
            .map_err(|error| {
                format!("{}: inference failed at step {step}: {error}", variant.name)
            })?;
        let output_error = |name: &str, error: ort::Error| {
            format!("{}: could not read output {name}: {error}", variant.name)
        };

        let next = match layout {
            Layout::Banter => {
                let (_, ids) = outputs["top_ids"]
                    .try_extract_tensor::<i64>()
                    .map_err(|error| output_error("top_ids", error))?;
                let next = ids.first().copied().ok_or("top_ids is empty")?;
                if variant.mode == Mode::KvCache {
                    let present = outputs
                        .remove("present")
                        .ok_or("the graph returned no present")?;
                    past.push(present);
                }
                next
            }
            Layout::Conventional => {
                let (shape, logits) = outputs["logits"]
                    .try_extract_tensor::<f32>()
                    .map_err(|error| output_error("logits", error))?;
                let vocab = shape.last().copied().unwrap_or(0) as usize;
                let last = &logits[logits.len().saturating_sub(vocab)..];
                let next = top_k(last, TOP_K)
                    .first()
                    .map(|&(_, id)| id as i64)
                    .ok_or("logits are empty")?;
                if variant.mode == Mode::KvCache {
                    for index in 0..2 * layers {
                        let kind = if index % 2 == 0 { "key" } else { "value" };
                        let name = format!("present.{}.{kind}", index / 2);
                        let present = outputs
                            .remove(&name)
                            .ok_or_else(|| format!("the graph returned no {name}"))?;
                        past.push(present);
                    }
                }
                next
            }
        };
        drop(outputs);

        past_length += count;
        sequence.push(next);
        feed = vec![next];
        if step == 0 {
            prefill_ms = step_started.elapsed().as_secs_f64() * 1e3;
        }
    }
    let line_ms = line_started.elapsed().as_secs_f64() * 1e3;
    variant.line_ms.push(line_ms);
    variant
        .step_ms
        .push((line_ms - prefill_ms) / (NEW_TOKENS - 1) as f64);
    variant.tokens = sequence[prompt_ids.len()..].to_vec();
    Ok(())
}

/// Returns the `k` largest logits as `(logit, id)`, descending; ties go to the lower id.
fn top_k(logits: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (id, &logit) in logits.iter().enumerate() {
        if best.len() == k && logit <= best[k - 1].0 {
            continue;
        }
        let position = best.partition_point(|&(value, _)| value >= logit);
        best.insert(position, (logit, id));
        best.truncate(k);
    }
    best
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        length if length % 2 == 1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
    }
}

fn print_table(variants: &[Variant]) {
    let reference = variants.iter().find(|variant| variant.name == "banter");
    let reference_step = reference.map_or(f64::NAN, |variant| median(&variant.step_ms));
    let reference_line = reference.map_or(f64::NAN, |variant| median(&variant.line_ms));

    println!(
        "{:<18} {:>9} {:>10} {:>10} {:>14} {:>14}  same line as banter",
        "variant", "file MB", "step ms", "line ms", "step / banter", "line / banter"
    );
    for variant in variants {
        let step = median(&variant.step_ms);
        let line = median(&variant.line_ms);
        let same_line = match reference {
            Some(reference) if reference.tokens == variant.tokens => "yes",
            Some(_) => "no",
            None => "n/a",
        };
        println!(
            "{:<18} {:>9.2} {:>10.3} {:>10.2} {:>14.2} {:>14.2}  {same_line}",
            variant.name,
            variant.file_bytes as f64 / 1e6,
            step,
            line,
            step / reference_step,
            line / reference_line
        );
    }
    println!(
        "(medians over lines; step ms = a line's mean decoding step, prefill excluded; \
         line ms = prefill + {} decoding steps)",
        NEW_TOKENS - 1
    );
}

/// Writes the medians as JSON for `tests/bench/graphs.mjs`, which prints them beside the
/// browser's figures.
fn write_json(path: &Path, variants: &[Variant], rounds: usize) -> Result<(), String> {
    let reference = variants.iter().find(|variant| variant.name == "banter");
    let entries: Vec<serde_json::Value> = variants
        .iter()
        .map(|variant| {
            serde_json::json!({
                "name": variant.name,
                "fileBytes": variant.file_bytes,
                "stepMs": median(&variant.step_ms),
                "lineMs": median(&variant.line_ms),
                "sameLineAsBanter": reference.map(|reference| reference.tokens == variant.tokens),
            })
        })
        .collect();
    let report = serde_json::json!({
        "rounds": rounds,
        "newTokens": NEW_TOKENS,
        "variants": entries,
    });
    std::fs::write(path, report.to_string())
        .map_err(|error| format!("could not write {}: {error}", path.display()))
}
