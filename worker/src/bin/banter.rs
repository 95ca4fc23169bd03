//! `banter`: generates a spoken line natively, with the same engine the Web Worker runs.
//!
//! ```text
//! banter say [--seed N] [--top-k K] [--temperature T] [--max-new-tokens N]
//!            [--bundle DIR] [--onnxruntime FILE] HEARD
//! ```
//!
//! Native only: in the browser the same engine runs inside the Web Worker.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Instant;

    use banter_protocol::SayRequest;
    use banter_worker::bundle::{init_native_runtime, load_dir};

    const USAGE: &str = "\
usage: banter say [options] HEARD

Generates the line a character says after hearing HEARD.

options:
  --seed N             sampler seed, 0 to 2^64 - 1 (default 0)
  --top-k K            candidates kept per step (default 40)
  --temperature T      softmax temperature, above 0 (default 0.9)
  --max-new-tokens N   limit on generated tokens (default 60)
  --bundle DIR         model bundle folder (default target/site/model)
  --onnxruntime FILE   native ONNX Runtime library (default $ORT_DYLIB_PATH, else
                       target/onnxruntime/libonnxruntime.so.1.30.0)
";

    pub fn main() -> ExitCode {
        match run(std::env::args().skip(1).collect()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("banter: {message}");
                ExitCode::FAILURE
            }
        }
    }

    fn run(args: Vec<String>) -> Result<(), String> {
        let mut args = args.into_iter();
        match args.next().as_deref() {
            Some("say") => {}
            Some("-h") | Some("--help") | None => {
                print!("{USAGE}");
                return Ok(());
            }
            Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}")),
        }

        let mut request = SayRequest {
            heard: String::new(),
            seed: 0,
            top_k: None,
            temperature: None,
            max_new_tokens: None,
        };
        let mut bundle = PathBuf::from("target/site/model");
        let mut library = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/onnxruntime/libonnxruntime.so.1.30.0"));
        let mut heard: Option<String> = None;

        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--seed" => request.seed = parse(&value("--seed")?, "--seed")?,
                "--top-k" => request.top_k = Some(parse(&value("--top-k")?, "--top-k")?),
                "--temperature" => {
                    request.temperature = Some(parse(&value("--temperature")?, "--temperature")?)
                }
                "--max-new-tokens" => {
                    request.max_new_tokens =
                        Some(parse(&value("--max-new-tokens")?, "--max-new-tokens")?)
                }
                "--bundle" => bundle = PathBuf::from(value("--bundle")?),
                "--onnxruntime" => library = PathBuf::from(value("--onnxruntime")?),
                other if other.starts_with("--") => {
                    return Err(format!("unknown option {other:?}\n{USAGE}"))
                }
                text => heard = Some(text.to_owned()),
            }
        }
        request.heard = heard.ok_or_else(|| format!("HEARD is missing\n{USAGE}"))?;

        let started = Instant::now();
        init_native_runtime(&library).map_err(|error| error.to_string())?;
        let (manifest, mut engine) = futures::executor::block_on(load_dir(&bundle))
            .map_err(|error| format!("{}: {error}", bundle.display()))?;
        let loaded = started.elapsed();

        let started = Instant::now();
        let line =
            futures::executor::block_on(engine.say(&request)).map_err(|error| error.to_string())?;
        let elapsed = started.elapsed();

        println!("{}", line.text);
        eprintln!(
        "model {} ({}), loaded in {:.1} ms; {} prompt tokens, {} new tokens in {:.1} ms ({:.2} ms per token, {:.1} ms in the model), stop: {}",
        manifest.source.name,
        if manifest.source.standin { "stand-in weights" } else { "trained weights" },
        loaded.as_secs_f64() * 1e3,
        line.prompt_tokens,
        line.token_ids.len(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3 / line.token_ids.len().max(1) as f64,
        line.model_ms,
        line.stop_reason.as_str(),
    );
        Ok(())
    }

    fn parse<T: std::str::FromStr>(text: &str, option: &str) -> Result<T, String> {
        text.parse()
            .map_err(|_| format!("{option} {text:?} is not a valid value"))
    }
}
