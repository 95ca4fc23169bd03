//! `cargo xtask fuzz`: runs each libFuzzer target of `fuzz/` for a bounded time.
//!
//! Installs the nightly toolchain and cargo-fuzz when missing. Each target starts from its
//! committed seeds in `fuzz/seeds/<target>/` and keeps what it finds in
//! `target/fuzz/corpus/<target>/`, so runs never write into the repository.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{root, tools};

/// The targets in `fuzz/fuzz_targets/`.
const TARGETS: [&str; 3] = ["decode_to_worker", "decode_from_worker", "round_trip"];

/// Largest single allocation, in MiB, that a fuzz input may cause before libFuzzer reports
/// it as a failure. Decoding a 4 KiB input (libFuzzer's default maximum input length)
/// allocates a few KiB, and a length prefix that reserved memory by its claimed size
/// would exceed this.
const MALLOC_LIMIT_MB: u32 = 1;

/// Runs every fuzz target for `seconds_per_target` seconds, failing on the first crash.
pub fn run(seconds_per_target: u64) -> Result<(), String> {
    ensure_nightly()?;
    ensure_cargo_fuzz()?;

    let root = root();
    let mut summary = Vec::new();
    for target in TARGETS {
        let executions = run_target(&root, target, seconds_per_target)?;
        summary.push(format!(
            "xtask: fuzz target {target}: {executions} executions in {seconds_per_target} s, no crash"
        ));
    }

    println!();
    for line in summary {
        println!("{line}");
    }
    Ok(())
}

/// Runs one target and returns how many inputs libFuzzer executed.
fn run_target(root: &Path, target: &str, seconds: u64) -> Result<u64, String> {
    let corpus = root.join("target/fuzz/corpus").join(target);
    let artifacts = root.join("target/fuzz/artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("could not create {}: {error}", dir.display()))?;
    }
    let seeds = root.join("fuzz/seeds").join(target);

    println!("xtask: fuzzing {target} for {seconds} s");
    let mut command = Command::new("cargo");
    command
        .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
        .arg(root.join("fuzz"))
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .current_dir(root)
        .stderr(Stdio::piped());

    let mut child = command
        .spawn()
        .map_err(|error| format!("could not run {command:?}: {error}"))?;

    // libFuzzer reports on stderr. Its progress lines (starting with `#`) and its
    // recommended dictionary (lines starting with `"`) are dropped. The rest (build output,
    // crash reports, final statistics) is passed through.
    let mut executions = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line =
                line.map_err(|error| format!("could not read the output of {target}: {error}"))?;
            if let Some(count) = line.strip_prefix("stat::number_of_executed_units:") {
                executions = count.trim().parse::<u64>().ok();
            }
            if !line.starts_with('#') && !line.starts_with('"') {
                eprintln!("{line}");
            }
        }
    }

    let status = child
        .wait()
        .map_err(|error| format!("could not wait for {command:?}: {error}"))?;
    if !status.success() {
        return Err(format!(
            "fuzz target {target} failed with {status}; the failing input is in {}, replay it with `cargo +nightly fuzz run {target} <file>` from the repository root",
            artifacts.display()
        ));
    }
    executions.ok_or_else(|| {
        format!("fuzz target {target} exited without libFuzzer's final statistics; run it by hand to see why")
    })
}

/// Installs the nightly toolchain, which cargo-fuzz needs for its sanitizer flags.
fn ensure_nightly() -> Result<(), String> {
    let toolchains = stdout_of("rustup", &["toolchain", "list"]).unwrap_or_default();
    if toolchains.lines().any(|line| line.starts_with("nightly")) {
        return Ok(());
    }
    println!("xtask: installing the nightly Rust toolchain for cargo-fuzz");
    tools::run(&mut tools::command(
        "rustup",
        &["toolchain", "install", "nightly", "--profile", "minimal"],
    ))
}

/// Installs cargo-fuzz when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    if stdout_of("cargo", &["+nightly", "fuzz", "--version"]).is_some() {
        return Ok(());
    }
    println!("xtask: installing cargo-fuzz (takes a few minutes once)");
    tools::run(&mut tools::command(
        "cargo",
        &["install", "cargo-fuzz", "--locked"],
    ))
}

/// Runs a command and returns its stdout, or `None` if it cannot run or fails.
fn stdout_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
