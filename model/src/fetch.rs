//! Downloads a checkpoint from a Hugging Face hub at a pinned commit and checks it against
//! a lock file.
//!
//! Files are fetched from `{base_url}/{repo}/resolve/{revision}/{file}`. Each one is
//! written to `FILE.part` and renamed once its size and sha256 match the lock file. A
//! download cut off mid-way keeps its `.part`, and the next run resumes it with an HTTP
//! `Range` request (or starts over if the server ignores the range).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ModelError;

/// The public Hugging Face hub.
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co";

/// Repository of the trained model.
pub const DEFAULT_REPO: &str = "roneneldan/TinyStories-1M";

/// Files every checkpoint needs.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "vocab.json", "merges.txt"];

/// Weight files in order of preference; a checkpoint needs one of them, and `fetch
/// --update-lock` records the first the repository has.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Files fetched when the repository has them.
pub const OPTIONAL_FILES: [&str; 1] = ["tokenizer.json"];

/// Redirects followed per file; the hub sends LFS files through one redirect to its CDN.
const MAX_REDIRECTS: usize = 5;

/// Contents of a lock file: the pinned commit and the expected size and digest of each file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    /// Repository the lock was recorded for, e.g. `roneneldan/TinyStories-1M`.
    pub repo: String,
    /// Full 40-character commit hash, or `None` before the first `--update-lock`.
    pub revision: Option<String>,
    /// Expected size and digest of each file, by file name.
    pub files: BTreeMap<String, LockedFile>,
}

/// Expected size and digest of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedFile {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// Settings of one fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Folder the checkpoint files are written to.
    pub out: PathBuf,
    /// Hub URL, e.g. [`DEFAULT_BASE_URL`]; a trailing slash is ignored.
    pub base_url: String,
    /// Repository on the hub, e.g. [`DEFAULT_REPO`].
    pub repo: String,
    /// Commit to fetch; when `None`, the lock file's revision.
    pub revision: Option<String>,
    /// Lock file to verify against, or to write with `update_lock`.
    pub lock: PathBuf,
    /// Record the downloaded files' sizes and digests in the lock file instead of checking them.
    pub update_lock: bool,
    /// Time limit for connecting to the server.
    pub connect_timeout: Duration,
}

/// Downloads the checkpoint described by `options` and returns the lock it was checked
/// against (or, with `update_lock`, the lock it wrote).
pub fn fetch(options: &FetchOptions) -> Result<LockFile, ModelError> {
    let lock = match read_lock(&options.lock) {
        Ok(lock) => lock,
        Err(ModelError::Io { source, .. })
            if options.update_lock && source.kind() == std::io::ErrorKind::NotFound =>
        {
            LockFile::default()
        }
        Err(error) => return Err(error),
    };

    let revision = match (&options.revision, &lock.revision) {
        (Some(revision), _) | (None, Some(revision)) => revision.clone(),
        (None, None) => {
            return Err(ModelError::MissingRevision {
                lock: options.lock.clone(),
            })
        }
    };
    check_revision(&revision)?;

    let files: Vec<(String, Option<LockedFile>)> = if options.update_lock {
        REQUIRED_FILES
            .iter()
            .chain(WEIGHT_FILES.iter())
            .chain(OPTIONAL_FILES.iter())
            .map(|name| ((*name).to_owned(), None))
            .collect()
    } else {
        check_lock_matches(&lock, options, &revision)?;
        lock.files
            .iter()
            .map(|(name, locked)| (name.clone(), Some(locked.clone())))
            .collect()
    };

    crate::create_dir(&options.out)?;
    let agent = agent(options.connect_timeout);
    let base = options.base_url.trim_end_matches('/');

    let mut recorded = BTreeMap::new();
    for (name, expected) in files {
        check_file_name(&name)?;
        let is_weights = WEIGHT_FILES.contains(&name.as_str());
        if is_weights && options.update_lock && has_weights(&recorded) {
            continue;
        }
        let url = format!("{base}/{}/resolve/{revision}/{name}", options.repo);
        let dest = options.out.join(&name);

        match download(&agent, &url, &dest, expected.as_ref())? {
            Some(locked) => {
                recorded.insert(name, locked);
            }
            None if is_weights && options.update_lock => {
                let last_choice = WEIGHT_FILES.last() == Some(&name.as_str());
                if last_choice && !has_weights(&recorded) {
                    return Err(ModelError::NoWeights {
                        repo: options.repo.clone(),
                        revision,
                    });
                }
            }
            None if OPTIONAL_FILES.contains(&name.as_str()) && options.update_lock => {}
            None => return Err(ModelError::HttpStatus { url, status: 404 }),
        }
    }

    let result = LockFile {
        repo: options.repo.clone(),
        revision: Some(revision),
        files: recorded,
    };
    if options.update_lock {
        write_lock(&options.lock, &result)?;
    }
    Ok(result)
}

/// Returns whether one of [`WEIGHT_FILES`] was already downloaded.
fn has_weights(recorded: &BTreeMap<String, LockedFile>) -> bool {
    WEIGHT_FILES.iter().any(|name| recorded.contains_key(*name))
}

/// Reads a lock file.
pub fn read_lock(path: &Path) -> Result<LockFile, ModelError> {
    let bytes = crate::read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|source| ModelError::InvalidJson {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a lock file as pretty JSON with a final newline.
pub fn write_lock(path: &Path, lock: &LockFile) -> Result<(), ModelError> {
    let mut text =
        serde_json::to_string_pretty(lock).map_err(|source| ModelError::InvalidJson {
            path: path.to_path_buf(),
            source,
        })?;
    text.push('\n');
    crate::write_file(path, text.as_bytes())
}

/// Accepts only full 40-character hex commit hashes, so a branch or tag that can move
/// (`main`, `v1`) never decides what gets downloaded.
pub fn check_revision(revision: &str) -> Result<(), ModelError> {
    let is_commit = revision.len() == 40
        && revision
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if is_commit {
        Ok(())
    } else {
        Err(ModelError::InvalidRevision {
            revision: revision.to_owned(),
        })
    }
}

fn check_lock_matches(
    lock: &LockFile,
    options: &FetchOptions,
    revision: &str,
) -> Result<(), ModelError> {
    if lock.revision.as_deref() != Some(revision) || lock.repo != options.repo {
        return Err(ModelError::LockMismatch {
            lock: options.lock.clone(),
            locked: format!(
                "{}@{}",
                lock.repo,
                lock.revision.as_deref().unwrap_or("none")
            ),
            requested: format!("{}@{revision}", options.repo),
        });
    }
    if lock.files.is_empty() {
        return Err(ModelError::EmptyLock {
            lock: options.lock.clone(),
        });
    }
    Ok(())
}

/// Rejects lock entries that would write outside the output folder.
fn check_file_name(name: &str) -> Result<(), ModelError> {
    let plain = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
    if plain {
        Ok(())
    } else {
        Err(ModelError::InvalidFileName {
            name: name.to_owned(),
        })
    }
}

fn agent(connect_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(connect_timeout))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Downloads `url` to `dest` through `dest.part` and returns its size and digest, or
/// `None` if the server has no such file (404).
///
/// If `dest` already has the expected size and digest, nothing is downloaded.
fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    expected: Option<&LockedFile>,
) -> Result<Option<LockedFile>, ModelError> {
    if let Some(expected) = expected {
        if dest.is_file() && describe_file(dest)? == *expected {
            return Ok(Some(expected.clone()));
        }
    }

    let part = part_path(dest);
    let mut restarted = false;
    let (response, linked_digest, offset) = loop {
        let offset = std::fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0);
        let (response, linked_digest) = request(agent, url, offset)?;
        let status = response.status().as_u16();

        // A part at or past the end of the file: start over once.
        if status == 416 && !restarted {
            remove_part(&part)?;
            restarted = true;
            continue;
        }
        match status {
            404 => return Ok(None),
            200 | 206 => break (response, linked_digest, offset),
            _ => {
                return Err(ModelError::HttpStatus {
                    url: url.to_owned(),
                    status,
                })
            }
        }
    };

    // 200 carries the whole file; 206 must continue exactly where the part ends.
    let resumed = response.status().as_u16() == 206;
    if resumed && content_range_start(&response) != Some(offset) {
        remove_part(&part)?;
        return Err(ModelError::UnexpectedRange {
            url: url.to_owned(),
            requested: offset,
        });
    }
    let mut file = open_part(&part, resumed)?;
    let mut body = response.into_body().into_reader();
    copy_body(&mut body, &mut file, &part).map_err(|source| ModelError::Interrupted {
        url: url.to_owned(),
        part: part.clone(),
        source,
    })?;
    drop(file);

    let actual = describe_file(&part)?;
    let checks = [
        expected.map(|locked| (locked.size, locked.sha256.clone(), "the lock file")),
        linked_digest.map(|digest| (actual.size, digest, "the server's X-Linked-Etag/ETag")),
    ];
    for (size, sha256, authority) in checks.into_iter().flatten() {
        if actual.size != size {
            remove_part(&part)?;
            return Err(ModelError::DownloadSize {
                url: url.to_owned(),
                expected: size,
                actual: actual.size,
            });
        }
        if actual.sha256 != sha256 {
            remove_part(&part)?;
            return Err(ModelError::DownloadDigest {
                url: url.to_owned(),
                expected: sha256,
                actual: actual.sha256,
                authority,
            });
        }
    }

    std::fs::rename(&part, dest).map_err(|source| ModelError::Io {
        action: "rename",
        path: part.clone(),
        source,
    })?;
    Ok(Some(actual))
}

/// Sends a GET, following redirects by hand so the hub's `X-Linked-Etag` on the first
/// response is not lost. Returns the final response and the sha256 that any hop's
/// `X-Linked-Etag` or `ETag` announced.
fn request(
    agent: &ureq::Agent,
    url: &str,
    offset: u64,
) -> Result<(ureq::http::Response<ureq::Body>, Option<String>), ModelError> {
    let mut current = url.to_owned();
    let mut linked_digest = None;

    for _ in 0..=MAX_REDIRECTS {
        let mut builder = agent.get(&current);
        if offset > 0 {
            builder = builder.header("Range", format!("bytes={offset}-"));
        }
        let response = builder.call().map_err(|source| ModelError::Connect {
            url: current.clone(),
            source: Box::new(source),
        })?;

        for header in ["x-linked-etag", "etag"] {
            if let Some(digest) = response
                .headers()
                .get(header)
                .and_then(|value| value.to_str().ok())
                .and_then(sha256_etag)
            {
                linked_digest.get_or_insert(digest);
            }
        }

        if !response.status().is_redirection() {
            return Ok((response, linked_digest));
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| ModelError::HttpStatus {
                url: current.clone(),
                status: response.status().as_u16(),
            })?;
        current = resolve_location(&current, location);
    }
    Err(ModelError::TooManyRedirects {
        url: url.to_owned(),
        max: MAX_REDIRECTS,
    })
}

/// Returns the digest in an ETag if it is a 64-character hex sha256. The hub's ETags of
/// LFS files are sha256 digests; those of other files are 40-character git blob ids.
fn sha256_etag(value: &str) -> Option<String> {
    let digest = value
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase();
    (digest.len() == 64 && digest.bytes().all(|byte| byte.is_ascii_hexdigit())).then_some(digest)
}

/// Resolves a `Location` header against the URL that sent it: absolute URLs as they are,
/// `/path` against the origin, anything else against the current folder.
fn resolve_location(current: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let after_scheme = current.find("://").map_or(0, |index| index + 3);
    if location.starts_with('/') {
        let origin_end = current[after_scheme..]
            .find('/')
            .map_or(current.len(), |index| after_scheme + index);
        return format!("{}{location}", &current[..origin_end]);
    }
    let folder_end = current
        .rfind('/')
        .filter(|&index| index >= after_scheme)
        .map_or(current.len(), |index| index + 1);
    format!("{}{location}", &current[..folder_end])
}

fn content_range_start(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn open_part(part: &Path, append: bool) -> Result<File, ModelError> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    options.open(part).map_err(|source| ModelError::Io {
        action: "open",
        path: part.to_path_buf(),
        source,
    })
}

fn remove_part(part: &Path) -> Result<(), ModelError> {
    match std::fs::remove_file(part) {
        Ok(()) => Ok(()),
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ModelError::Io {
            action: "remove",
            path: part.to_path_buf(),
            source,
        }),
    }
}

/// Copies the body into the part file, flushing what arrived before an error so a later
/// run can resume from it.
fn copy_body(body: &mut impl Read, file: &mut File, part: &Path) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let count = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                file.flush()?;
                return Err(error);
            }
        };
        file.write_all(&buffer[..count])?;
    }
    file.flush()?;
    file.sync_all().map_err(|error| {
        std::io::Error::new(error.kind(), format!("sync {}: {error}", part.display()))
    })
}

/// Returns the size and sha256 of a file on disk.
pub fn describe_file(path: &Path) -> Result<LockedFile, ModelError> {
    let mut file = File::open(path).map_err(|source| ModelError::Io {
        action: "open",
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(|source| ModelError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(LockedFile {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}
