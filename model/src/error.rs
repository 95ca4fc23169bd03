use std::path::PathBuf;

/// Errors of writing a stand-in, exporting a bundle or fetching a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file system operation failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// The failed operation, e.g. `read` or `create directory`.
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file the step needs does not exist.
    #[error("{path} is missing; pass the folder that contains it")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
    },

    /// A JSON file could not be parsed or written.
    #[error("{path} is not valid JSON of the expected shape: {source}")]
    InvalidJson {
        /// The file involved.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` names an architecture other than GPT-Neo.
    #[error("model_type {found:?} is not supported; only \"gpt_neo\" checkpoints can be exported")]
    UnsupportedModelType {
        /// The `model_type` found.
        found: String,
    },

    /// `config.json` names an MLP activation the graph does not implement.
    #[error("activation_function {found:?} is not supported; only \"gelu_new\" is implemented")]
    UnsupportedActivation {
        /// The `activation_function` found.
        found: String,
    },

    /// A `config.json` value is out of range or inconsistent with another.
    #[error("config.json field {field} = {value} is invalid: {reason}")]
    InvalidConfig {
        /// Name of the field.
        field: &'static str,
        /// The value found.
        value: String,
        /// Reason for the rejection.
        reason: String,
    },

    /// A tensor the config implies is not in the weights file.
    #[error("tensor {name} (expected shape {expected:?}) is missing from {file}; the checkpoint does not match its config.json")]
    MissingTensor {
        /// Hugging Face parameter name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// The weights file searched, e.g. `model.safetensors`.
        file: String,
    },

    /// A tensor has another shape than the config implies.
    #[error("tensor {name} has shape {actual:?} but config.json implies {expected:?}; the checkpoint does not match its config.json")]
    TensorShape {
        /// Hugging Face parameter name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the file.
        actual: Vec<usize>,
    },

    /// A tensor is not float32.
    #[error("tensor {name} has dtype {found} but the exporter reads only F32; convert the checkpoint to float32 first")]
    TensorDtype {
        /// Hugging Face parameter name.
        name: String,
        /// Dtype in the file.
        found: String,
    },

    /// `model.safetensors` could not be parsed or written.
    #[error("{path} is not a valid safetensors file: {reason}")]
    InvalidSafetensors {
        /// The file involved.
        path: PathBuf,
        /// The library's error.
        reason: String,
    },

    /// `pytorch_model.bin` could not be read as a `torch.save` state dict.
    #[error("{path} is not a readable PyTorch state dict: {reason}")]
    InvalidPytorchCheckpoint {
        /// The file involved.
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// The tokenizer could not be built from `vocab.json` and `merges.txt`.
    #[error("failed to build the tokenizer from {path}: {reason}")]
    Tokenizer {
        /// The vocabulary file involved.
        path: PathBuf,
        /// The library's error.
        reason: String,
    },

    /// The manifest could not be serialised.
    #[error("failed to serialise manifest.json: {reason}")]
    Manifest {
        /// The library's error.
        reason: String,
    },

    /// Neither `--revision` nor the lock file names a commit.
    #[error("no revision to fetch: {lock} has none; pass --revision <40-character commit hash> --update-lock")]
    MissingRevision {
        /// The lock file read.
        lock: PathBuf,
    },

    /// The revision is a branch, tag or abbreviated hash instead of a full commit hash.
    #[error("revision {revision:?} is not a commit hash; pass the full 40-character commit hash, since a branch such as \"main\" can move")]
    InvalidRevision {
        /// The revision given.
        revision: String,
    },

    /// The lock file was recorded for another repository or commit.
    #[error(
        "{lock} is for {locked}, not {requested}; pass --update-lock to record the new revision"
    )]
    LockMismatch {
        /// The lock file read.
        lock: PathBuf,
        /// `repo@revision` in the lock file.
        locked: String,
        /// `repo@revision` requested.
        requested: String,
    },

    /// The lock file lists no files to verify.
    #[error("{lock} lists no files; run fetch once with --update-lock to record them")]
    EmptyLock {
        /// The lock file read.
        lock: PathBuf,
    },

    /// A lock file entry is not a plain file name.
    #[error("lock file entry {name:?} is not a plain file name")]
    InvalidFileName {
        /// The entry.
        name: String,
    },

    /// The server could not be reached or the request failed before a response.
    #[error("failed to connect to {url}: {source}; check the network connection and --base-url")]
    Connect {
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },

    /// The server returned an unexpected HTTP status.
    #[error("{url} returned HTTP status {status}")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },

    /// The server kept redirecting.
    #[error("{url} redirected more than {max} times")]
    TooManyRedirects {
        /// The URL first requested.
        url: String,
        /// Redirects followed.
        max: usize,
    },

    /// The server returned another range than a `Range` request asked for.
    #[error("{url} returned another range than the requested bytes from {requested}; the partial file was deleted, run fetch again")]
    UnexpectedRange {
        /// The URL requested.
        url: String,
        /// First byte requested.
        requested: u64,
    },

    /// The repository has neither `model.safetensors` nor `pytorch_model.bin` at the revision.
    #[error("{repo} has neither model.safetensors nor pytorch_model.bin at {revision}; pick a revision that has one of them")]
    NoWeights {
        /// The repository.
        repo: String,
        /// The commit.
        revision: String,
    },

    /// The connection broke while the body was arriving.
    #[error("download of {url} was interrupted: {source}; the bytes received are kept in {part}, run fetch again to resume")]
    Interrupted {
        /// The URL requested.
        url: String,
        /// The partial file kept for resuming.
        part: PathBuf,
        /// The read or write error.
        #[source]
        source: std::io::Error,
    },

    /// A downloaded file has another size than expected.
    #[error("{url} has {actual} bytes but {expected} were expected; the partial file was deleted")]
    DownloadSize {
        /// The URL requested.
        url: String,
        /// Expected size.
        expected: u64,
        /// Size received.
        actual: u64,
    },

    /// A downloaded file has another sha256 than expected.
    #[error(
        "{url} has sha256 {actual} but {authority} says {expected}; the partial file was deleted"
    )]
    DownloadDigest {
        /// The URL requested.
        url: String,
        /// Expected digest.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
        /// Origin of the expected digest.
        authority: &'static str,
    },
}
