//! Project tasks: `cargo xtask site | serve | test | bench | fuzz`.
//!
//! Each task installs what it needs first (the wasm32 target, a pinned wasm-bindgen-cli,
//! the npm packages, Debian's Chromium, the native ONNX Runtime library), so the same
//! commands work on a fresh machine and in CI.

mod bench;
mod fuzz;
mod serve;
mod site;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  site            build the static site into target/site/
  serve           build the site and serve it on 127.0.0.1
      --port N    port to listen on (default 8000; 0 picks a free one)
      --no-build  serve target/site/ as it is
  test            build the site and run every test: cargo tests, node tests, and
                  end-to-end tests in headless Chromium
  bench           build the site, export the benchmark's extra bundles into
                  target/bench/, and time decoding steps and 60-token lines of each graph
                  layout on native ONNX Runtime and in headless Chromium, banter's
                  whole path (Dialogue.say) in Chromium, and onnxruntime-web on one
                  thread against two
      --rounds N  timed lines per variant (default 8)
      --optimum   also time the graph that Hugging Face Optimum exports, with the
                  Python in $BANTER_PYTHON (default python3), which needs
                  optimum-onnx, onnxruntime and accelerate
  fuzz            run each fuzz target of banter-protocol (cargo fuzz, nightly) and fail
                  on any crash
      --seconds N time per target (default 60)
";

/// Failure of a task, printed as one line.
pub type TaskResult = Result<(), String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("site") => site::build().map(|_| ()),
        Some("serve") => serve_task(&args[1..]),
        Some("test") => test_task(),
        Some("bench") => bench::run_task(&args[1..], USAGE),
        Some("fuzz") => fuzz_task(&args[1..]),
        Some("-h") | Some("--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Root of the workspace (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn fuzz_task(args: &[String]) -> TaskResult {
    let seconds = match args {
        [] => 60,
        [flag, value] if flag == "--seconds" => value
            .parse()
            .map_err(|_| format!("--seconds {value:?} is not a whole number of seconds"))?,
        _ => return Err(format!("unknown options {args:?} for fuzz\n{USAGE}")),
    };
    fuzz::run(seconds)
}

fn serve_task(args: &[String]) -> TaskResult {
    let mut port: u16 = 8000;
    let mut build = true;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => {
                let value = rest.next().ok_or("--port needs a number")?;
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value:?} is not a port number"))?;
            }
            "--no-build" => build = false,
            other => return Err(format!("unknown option {other:?} for serve\n{USAGE}")),
        }
    }

    let model = if build { Some(site::build()?) } else { None };
    let server = serve::Server::start(&site::site_dir(), port)?;
    println!();
    if let Some(model) = model {
        println!("Model: {model}");
    }
    println!("Serving {} at {}", site::site_dir().display(), server.url());
    println!("Open {} in a browser; press Ctrl-C to stop.", server.url());
    server.wait();
    Ok(())
}

fn test_task() -> TaskResult {
    let model = site::build()?;
    println!("xtask: site built with {model}");
    let ort_library = tools::ensure_onnxruntime()?;
    let chromium = tools::ensure_chromium()?;
    let root = root();
    let bundle = site::site_dir().join("model");

    println!(
        "\nxtask: cargo tests (native ONNX Runtime {})",
        ort_library.display()
    );
    tools::run(
        tools::command("cargo", &["test"])
            .current_dir(&root)
            .env("ORT_DYLIB_PATH", &ort_library)
            .env("BANTER_BUNDLE_DIR", &bundle),
    )?;

    println!("\nxtask: node tests (tokenizer reference)");
    tools::run(tools::command("node", &["--test", "tests/tokenizer/"]).current_dir(&root))?;

    println!("\nxtask: end-to-end tests in {}", chromium.display());
    let server = serve::Server::start(&site::site_dir(), 0)?;
    let result = tools::run(
        tools::command("node", &["--test", "--test-concurrency=1", "tests/e2e/"])
            .current_dir(&root)
            .env("BANTER_SITE_URL", server.url())
            .env("BANTER_SITE_DIR", site::site_dir())
            .env("BANTER_CHROMIUM", &chromium),
    );
    server.stop();
    result
}
