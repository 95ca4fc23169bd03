//! Installing and running the tools the tasks need.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, TaskResult};

/// wasm-bindgen-cli must match the `wasm-bindgen` crate pinned in Cargo.toml exactly.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";

/// ONNX Runtime version of the native library; the same as onnxruntime-web in package.json.
pub const ONNXRUNTIME_VERSION: &str = "1.30.0";

/// Builds a command with arguments.
pub fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// Runs a command, inheriting stdout and stderr, and fails unless it exits with 0.
pub fn run(command: &mut Command) -> TaskResult {
    let status = command
        .status()
        .map_err(|error| format!("could not run {command:?}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// Runs a command and returns its trimmed stdout, or `None` if it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Adds the wasm32 target to the Rust toolchain when it is missing.
pub fn ensure_wasm_target() -> TaskResult {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|line| line == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    println!("xtask: installing the Rust target wasm32-unknown-unknown");
    run(&mut command(
        "rustup",
        &["target", "add", "wasm32-unknown-unknown"],
    ))
}

/// Installs wasm-bindgen-cli at [`WASM_BINDGEN_VERSION`] when another or no version is on PATH.
pub fn ensure_wasm_bindgen() -> TaskResult {
    let expected = format!("wasm-bindgen {WASM_BINDGEN_VERSION}");
    if output("wasm-bindgen", &["--version"]).as_deref() == Some(expected.as_str()) {
        return Ok(());
    }
    println!(
        "xtask: installing wasm-bindgen-cli {WASM_BINDGEN_VERSION} (takes a few minutes once)"
    );
    run(&mut command(
        "cargo",
        &[
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN_VERSION,
        ],
    ))
}

/// Runs `npm ci` when `node_modules` is missing or older than `package-lock.json`.
pub fn ensure_npm_packages() -> TaskResult {
    let root = root();
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let fresh = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed >= lock,
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    println!("xtask: installing npm packages (npm ci)");
    run(command("npm", &["ci", "--no-audit", "--no-fund"]).current_dir(&root))
}

/// Returns the path of Debian's Chromium, installing the package with apt-get when missing.
pub fn ensure_chromium() -> Result<PathBuf, String> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if chromium.exists() {
        return Ok(chromium);
    }
    println!("xtask: installing Debian's chromium package (apt-get)");
    run(&mut command("apt-get", &["update"]))?;
    run(
        command("apt-get", &["install", "-y", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive")
    )?;
    if chromium.exists() {
        Ok(chromium)
    } else {
        Err(format!(
            "{} is still missing after installing chromium",
            chromium.display()
        ))
    }
}

/// Returns the path of the native ONNX Runtime library, taking it from the PyPI
/// `onnxruntime` wheel of [`ONNXRUNTIME_VERSION`] the first time.
pub fn ensure_onnxruntime() -> Result<PathBuf, String> {
    let dir = root().join("target/onnxruntime");
    let library = dir.join(format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}"));
    if library.exists() {
        return Ok(library);
    }

    println!("xtask: downloading the onnxruntime {ONNXRUNTIME_VERSION} wheel from PyPI for its shared library");
    let wheels = dir.join("wheel");
    std::fs::create_dir_all(&wheels)
        .map_err(|error| format!("could not create {}: {error}", wheels.display()))?;
    let requirement = format!("onnxruntime=={ONNXRUNTIME_VERSION}");
    run(command(
        "python3",
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
        ],
    )
    .arg(&wheels)
    .arg(&requirement))?;

    let wheel = std::fs::read_dir(&wheels)
        .map_err(|error| format!("could not list {}: {error}", wheels.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| format!("pip left no wheel in {}", wheels.display()))?;

    // A wheel is a zip file; Python's zipfile module extracts the one member needed.
    let member = format!("onnxruntime/capi/libonnxruntime.so.{ONNXRUNTIME_VERSION}");
    let script = "import sys, zipfile, shutil\n\
                  with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    \
                  shutil.copyfileobj(src, dst)\n";
    run(command("python3", &["-c", script])
        .arg(&wheel)
        .arg(&member)
        .arg(&library))?;
    Ok(library)
}
