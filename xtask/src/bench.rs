//! `cargo xtask bench`: times the graph layouts on native ONNX Runtime and in headless
//! Chromium, banter's whole path in Chromium, and onnxruntime-web on one thread against
//! two.
//!
//! The extra bundles are exported from the site's checkpoint into `target/bench/<name>/`
//! and served under `/bench/` beside the site only while the benchmark runs, so the site
//! in `target/site/` never contains them. The worker scripts of the benchmark are copied
//! there too. With `--optimum`, the checkpoint is also exported by Hugging Face Optimum
//! (`tests/bench/export_optimum.py`, run with `$BANTER_PYTHON`, else `python3`).

use std::path::{Path, PathBuf};

use crate::site::{self, SiteModel};
use crate::tools::{self, command, run};
use crate::{root, TaskResult};

/// Bundles exported for the benchmark only: folder name, `--layout`, `--weights`. The
/// site's own bundle (banter layout, int8) is the fourth.
const BUNDLES: [(&str, &str, &str); 3] = [
    ("conventional-int8", "conventional", "int8"),
    ("conventional-fp32", "conventional", "fp32"),
    ("banter-fp32", "banter", "fp32"),
];

/// Scripts from `tests/bench/` that the page loads from `/bench/`: the decoding loops in
/// a dedicated worker, and banter's worker with onnxruntime-web's runs timed.
const SCRIPTS: [&str; 3] = ["page_loops.mjs", "loop_worker.js", "timed_worker.js"];

/// Folder under `target/bench/` of the Optimum export.
const OPTIMUM_DIR: &str = "optimum";

/// Rounds when `--rounds` is not given. Each round decodes one line per variant.
const DEFAULT_ROUNDS: u32 = 8;

/// Options of `cargo xtask bench`.
struct Options {
    rounds: u32,
    /// Whether the conventional graph as Hugging Face Optimum exports it is timed too.
    optimum: bool,
}

/// URL path prefix under which `target/bench/` is served.
const MOUNT: &str = "bench";

/// Returns the folder of the benchmark's bundles and results.
fn bench_dir() -> PathBuf {
    root().join("target/bench")
}

/// Runs `cargo xtask bench [--rounds N] [--optimum]`.
pub fn run_task(args: &[String], usage: &str) -> TaskResult {
    let Options { rounds, optimum } = parse_options(args, usage)?;

    let model = site::build()?;
    println!("xtask: site built with {model}");
    let chromium = tools::ensure_chromium()?;
    let ort_library = tools::ensure_onnxruntime()?;
    let bench = bench_dir();
    export_bundles(&model, &bench)?;
    copy_scripts(&bench)?;
    if optimum {
        export_optimum(&model, &bench)?;
    }

    println!("\nxtask: native ONNX Runtime, release build of banter-model's decode_bench example");
    let native_json = bench.join("native.json");
    if native_json.exists() {
        std::fs::remove_file(&native_json)
            .map_err(|error| format!("could not remove {}: {error}", native_json.display()))?;
    }
    run(command(
        "cargo",
        &[
            "run",
            "--release",
            "--quiet",
            "--package",
            "banter-model",
            "--example",
            "decode_bench",
            "--",
            "--rounds",
            &rounds.to_string(),
            "--site-model",
        ],
    )
    .arg(site::site_dir().join("model"))
    .arg("--bench-dir")
    .arg(&bench)
    .arg("--json")
    .arg(&native_json)
    .current_dir(root())
    .env("ORT_DYLIB_PATH", &ort_library))?;

    println!("\nxtask: headless Chromium ({})", chromium.display());
    let server = crate::serve::Server::start_with_mounts(
        &site::site_dir(),
        0,
        vec![(MOUNT.to_owned(), bench.clone())],
    )?;
    let script = |name: &str| {
        let mut node = command("node", &[name]);
        node.current_dir(root())
            .env("BANTER_SITE_URL", server.url())
            .env("BANTER_CHROMIUM", &chromium)
            .env("BANTER_BENCH_ROUNDS", rounds.to_string())
            .env("BANTER_BENCH_NATIVE", &native_json);
        if optimum {
            node.env("BANTER_BENCH_OPTIMUM", "1");
        }
        run(&mut node)
    };
    let result = script("tests/bench/graphs.mjs").and_then(|()| script("tests/bench/threads.mjs"));
    server.stop();
    result
}

fn parse_options(args: &[String], usage: &str) -> Result<Options, String> {
    let mut rounds = DEFAULT_ROUNDS;
    let mut optimum = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--rounds" => {
                let value = rest.next().ok_or("--rounds needs a number")?;
                rounds = value
                    .parse()
                    .ok()
                    .filter(|&rounds| rounds > 0)
                    .ok_or_else(|| format!("--rounds {value:?} is not a positive integer"))?;
            }
            "--optimum" => optimum = true,
            other => return Err(format!("unknown option {other:?} for bench\n{usage}")),
        }
    }
    Ok(Options { rounds, optimum })
}

/// Copies [`SCRIPTS`] from `tests/bench/` into `bench`.
fn copy_scripts(bench: &Path) -> TaskResult {
    for name in SCRIPTS {
        site::copy(&root().join("tests/bench").join(name), &bench.join(name))?;
    }
    Ok(())
}

/// Exports the site's checkpoint with Hugging Face Optimum into `bench/optimum/`.
fn export_optimum(model: &SiteModel, bench: &Path) -> TaskResult {
    let python = std::env::var("BANTER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = bench.join(OPTIMUM_DIR);
    println!(
        "xtask: exporting the checkpoint with Hugging Face Optimum ({python}) into {}",
        out.display()
    );
    run(
        command(&python, &["tests/bench/export_optimum.py", "--checkpoint"])
            .arg(&model.checkpoint)
            .arg("--out")
            .arg(&out)
            .current_dir(root()),
    )
}

/// Exports [`BUNDLES`] from the site's checkpoint into `bench/<name>/`.
fn export_bundles(model: &SiteModel, bench: &Path) -> TaskResult {
    for (name, layout, weights) in BUNDLES {
        let out = bench.join(name);
        println!(
            "xtask: exporting the {layout} {weights} bundle into {}",
            out.display()
        );
        run(site::banter_model(&[
            "export",
            "--layout",
            layout,
            "--weights",
            weights,
            "--checkpoint",
        ])
        .arg(&model.checkpoint)
        .arg("--out")
        .arg(&out))?;
    }
    Ok(())
}
