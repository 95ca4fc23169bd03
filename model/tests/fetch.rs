//! `fetch` against a hub stand-in served on 127.0.0.1 by a small HTTP/1.1 server in this file.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banter_model::fetch::{fetch, read_lock, FetchOptions, LockFile};
use banter_model::ModelError;

const REPO: &str = "test-org/TinyStories-standin";
const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// Most connections one test server accepts before its thread ends.
const MAX_CONNECTIONS: usize = 200;

/// Responses of the test server.
#[derive(Default)]
struct Behaviour {
    /// File contents by file name.
    files: BTreeMap<String, Vec<u8>>,
    /// Files sent as a 302 to `/cdn/{file}` with this `X-Linked-Etag`, as the hub does for LFS files.
    linked_etags: BTreeMap<String, String>,
    /// Files whose next full response is cut off after this many body bytes.
    cut_off_once: BTreeMap<String, usize>,
    /// Whether `Range: bytes=N-` gets a 206.
    honour_range: bool,
    /// `Range` headers received, by file name.
    ranges: Vec<(String, String)>,
}

struct HubStandin {
    base_url: String,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl HubStandin {
    fn start(files: BTreeMap<String, Vec<u8>>) -> HubStandin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(Behaviour {
            files,
            honour_range: true,
            ..Default::default()
        }));

        let shared = Arc::clone(&behaviour);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                serve(stream, &shared);
            }
        });
        HubStandin {
            base_url,
            behaviour,
        }
    }

    fn with<R>(&self, edit: impl FnOnce(&mut Behaviour) -> R) -> R {
        edit(&mut self.behaviour.lock().unwrap())
    }
}

/// Serves one request and closes the connection.
fn serve(stream: TcpStream, behaviour: &Mutex<Behaviour>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();

    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }

    let resolve_prefix = format!("/{REPO}/resolve/{REVISION}/");
    let mut state = behaviour.lock().unwrap();
    let mut stream = stream;

    if let Some(name) = path.strip_prefix(&resolve_prefix) {
        if let Some(etag) = state.linked_etags.get(name) {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: /cdn/{name}\r\nX-Linked-Etag: \"{etag}\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            return;
        }
    }
    let name = path
        .strip_prefix(&resolve_prefix)
        .or_else(|| path.strip_prefix("/cdn/"))
        .unwrap_or("")
        .to_owned();

    let Some(body) = state.files.get(&name).cloned() else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if let Some(range) = &range {
        state.ranges.push((name.clone(), range.clone()));
    }

    let start = range
        .as_deref()
        .filter(|_| state.honour_range)
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.trim_end_matches('-').parse::<usize>().ok());
    let head = match start {
        Some(start) if start >= body.len() => {
            let _ = stream.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Some(start) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - start,
            body.len() - 1,
            body.len()
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()),
    };
    let payload = &body[start.unwrap_or(0)..];
    let cut = state.cut_off_once.remove(&name);
    drop(state);

    let _ = stream.write_all(head.as_bytes());
    let _ = match cut {
        Some(limit) => stream.write_all(&payload[..limit.min(payload.len())]),
        None => stream.write_all(payload),
    };
    let _ = stream.flush();
}

fn options(hub_url: &str, out: &Path, lock: &Path) -> FetchOptions {
    FetchOptions {
        out: out.to_path_buf(),
        base_url: hub_url.to_owned(),
        repo: REPO.to_owned(),
        revision: None,
        lock: lock.to_path_buf(),
        update_lock: false,
        connect_timeout: Duration::from_secs(5),
    }
}

/// Returns the stand-in checkpoint's files as the hub would serve them.
fn standin_files(work: &Path) -> BTreeMap<String, Vec<u8>> {
    let checkpoint = common::standin(&work.join("source"));
    [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
        "tokenizer.json",
    ]
    .into_iter()
    .map(|name| {
        (
            name.to_owned(),
            std::fs::read(checkpoint.join(name)).unwrap(),
        )
    })
    .collect()
}

/// Records a lock file for `files` by fetching once with `--update-lock`.
fn record_lock(hub: &HubStandin, work: &Path) -> PathBuf {
    let lock = work.join("lock.json");
    let mut record = options(&hub.base_url, &work.join("recorded"), &lock);
    record.revision = Some(REVISION.to_owned());
    record.update_lock = true;
    fetch(&record).unwrap();
    lock
}

fn part_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn fetch_records_lock_then_verifies() {
    let work = tempfile::tempdir().unwrap();
    let files = standin_files(work.path());
    let hub = HubStandin::start(files.clone());
    let lock_path = record_lock(&hub, work.path());

    let lock: LockFile = read_lock(&lock_path).unwrap();
    assert_eq!(lock.repo, REPO);
    assert_eq!(lock.revision.as_deref(), Some(REVISION));
    assert_eq!(lock.files.len(), 5);
    assert_eq!(
        lock.files["model.safetensors"].size,
        files["model.safetensors"].len() as u64
    );
    assert_eq!(
        lock.files["model.safetensors"].sha256,
        common::sha256_file(&work.path().join("source/model.safetensors"))
    );

    let out = work.path().join("verified");
    fetch(&options(&hub.base_url, &out, &lock_path)).unwrap();
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(out.join(name)).unwrap(), bytes, "{name}");
    }
    assert!(part_files(&out).is_empty());

    // The fetched folder is a checkpoint the exporter accepts.
    banter_model::export::export(
        &out,
        &work.path().join("bundle"),
        &banter_model::export::ExportOptions::default(),
    )
    .unwrap();
}

#[test]
fn fetch_checks_linked_etag() {
    let work = tempfile::tempdir().unwrap();
    let files = standin_files(work.path());
    let digest = common::sha256_file(&work.path().join("source/model.safetensors"));
    let hub = HubStandin::start(files);

    hub.with(|state| {
        state
            .linked_etags
            .insert("model.safetensors".into(), digest.clone())
    });
    let lock_path = record_lock(&hub, work.path());
    assert_eq!(
        read_lock(&lock_path).unwrap().files["model.safetensors"].sha256,
        digest
    );

    hub.with(|state| {
        state
            .linked_etags
            .insert("model.safetensors".into(), "ab".repeat(32))
    });
    let out = work.path().join("bad-etag");
    let mut request = options(&hub.base_url, &out, &work.path().join("other-lock.json"));
    request.revision = Some(REVISION.to_owned());
    request.update_lock = true;
    let error = fetch(&request).unwrap_err();

    assert!(
        matches!(&error, ModelError::DownloadDigest { expected, .. } if *expected == "ab".repeat(32)),
        "{error}"
    );
    assert!(!out.join("model.safetensors").exists());
    assert!(part_files(&out).is_empty());
}

#[test]
fn fetch_rejects_corrupted_file() {
    let work = tempfile::tempdir().unwrap();
    let hub = HubStandin::start(standin_files(work.path()));
    let lock_path = record_lock(&hub, work.path());

    hub.with(|state| {
        let merges = state.files.get_mut("merges.txt").unwrap();
        merges[100] ^= 0x20;
    });
    let out = work.path().join("corrupt");
    let error = fetch(&options(&hub.base_url, &out, &lock_path)).unwrap_err();

    assert!(
        matches!(&error, ModelError::DownloadDigest { url, .. } if url.ends_with("/merges.txt")),
        "{error}"
    );
    assert!(!out.join("merges.txt").exists());
    assert!(part_files(&out).is_empty());
}

#[test]
fn fetch_rejects_wrong_size() {
    let work = tempfile::tempdir().unwrap();
    let hub = HubStandin::start(standin_files(work.path()));
    let lock_path = record_lock(&hub, work.path());

    hub.with(|state| {
        state
            .files
            .get_mut("config.json")
            .unwrap()
            .extend_from_slice(b"\n\n")
    });
    let out = work.path().join("longer");
    let error = fetch(&options(&hub.base_url, &out, &lock_path)).unwrap_err();

    assert!(matches!(&error, ModelError::DownloadSize { .. }), "{error}");
    assert!(!out.join("config.json").exists());
    assert!(part_files(&out).is_empty());
}

#[test]
fn fetch_resumes_interrupted_download() {
    let work = tempfile::tempdir().unwrap();
    let files = standin_files(work.path());
    let hub = HubStandin::start(files.clone());
    let lock_path = record_lock(&hub, work.path());

    hub.with(|state| {
        state
            .cut_off_once
            .insert("model.safetensors".into(), 1_000_000)
    });
    let out = work.path().join("resumed");
    let error = fetch(&options(&hub.base_url, &out, &lock_path)).unwrap_err();
    assert!(matches!(&error, ModelError::Interrupted { .. }), "{error}");
    assert!(!out.join("model.safetensors").exists());
    let kept = std::fs::metadata(out.join("model.safetensors.part"))
        .unwrap()
        .len();
    assert!(kept > 0, "no bytes kept");
    assert!(kept <= 1_000_000, "kept {kept} bytes, more than were sent");

    fetch(&options(&hub.base_url, &out, &lock_path)).unwrap();
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        files["model.safetensors"]
    );
    assert!(part_files(&out).is_empty());
    let ranges = hub.with(|state| state.ranges.clone());
    assert_eq!(
        ranges,
        vec![("model.safetensors".to_owned(), format!("bytes={kept}-"))]
    );
}

#[test]
fn fetch_restarts_when_range_ignored() {
    let work = tempfile::tempdir().unwrap();
    let files = standin_files(work.path());
    let hub = HubStandin::start(files.clone());
    let lock_path = record_lock(&hub, work.path());

    hub.with(|state| {
        state.honour_range = false;
        state.cut_off_once.insert("vocab.json".into(), 4096);
    });
    let out = work.path().join("restarted");
    assert!(fetch(&options(&hub.base_url, &out, &lock_path)).is_err());
    assert!(out.join("vocab.json.part").exists());

    fetch(&options(&hub.base_url, &out, &lock_path)).unwrap();
    assert_eq!(
        std::fs::read(out.join("vocab.json")).unwrap(),
        files["vocab.json"]
    );
    assert!(part_files(&out).is_empty());
}

#[test]
fn fetch_reports_server_down() {
    let work = tempfile::tempdir().unwrap();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base_url = format!("http://127.0.0.1:{port}");
    let mut request = options(
        &base_url,
        &work.path().join("out"),
        &work.path().join("lock.json"),
    );
    request.revision = Some(REVISION.to_owned());
    request.update_lock = true;

    let error = fetch(&request).unwrap_err();
    assert!(matches!(&error, ModelError::Connect { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{base_url}/{REPO}/resolve/{REVISION}/config.json")),
        "{message}"
    );
}

#[test]
fn fetch_rejects_branch_revision() {
    let work = tempfile::tempdir().unwrap();
    for revision in ["main", "v1.0", "0123456", &"A".repeat(40)] {
        let mut request = options(
            "http://127.0.0.1:9",
            &work.path().join("out"),
            &work.path().join("lock.json"),
        );
        request.revision = Some(revision.to_owned());
        request.update_lock = true;

        let error = fetch(&request).unwrap_err();
        assert!(
            matches!(&error, ModelError::InvalidRevision { revision: found } if found == revision),
            "{error}"
        );
        assert!(error.to_string().contains("commit hash"));
    }
}

#[test]
fn fetch_requires_revision() {
    let work = tempfile::tempdir().unwrap();
    let lock_path = work.path().join("lock.json");
    std::fs::write(
        &lock_path,
        format!(r#"{{"repo": "{REPO}", "revision": null, "files": {{}}}}"#),
    )
    .unwrap();

    let error = fetch(&options(
        "http://127.0.0.1:9",
        &work.path().join("out"),
        &lock_path,
    ))
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingRevision { .. }),
        "{error}"
    );
}

#[test]
fn fetch_rejects_lock_for_other_revision() {
    let work = tempfile::tempdir().unwrap();
    let hub = HubStandin::start(standin_files(work.path()));
    let lock_path = record_lock(&hub, work.path());

    let mut request = options(&hub.base_url, &work.path().join("out"), &lock_path);
    request.revision = Some("f".repeat(40));
    let error = fetch(&request).unwrap_err();
    assert!(matches!(&error, ModelError::LockMismatch { .. }), "{error}");
}

#[test]
fn fetch_reports_missing_weights() {
    let work = tempfile::tempdir().unwrap();
    let mut files = standin_files(work.path());
    files.remove("model.safetensors");
    files.remove("pytorch_model.bin");
    let hub = HubStandin::start(files);

    let mut request = options(
        &hub.base_url,
        &work.path().join("out"),
        &work.path().join("lock.json"),
    );
    request.revision = Some(REVISION.to_owned());
    request.update_lock = true;
    let error = fetch(&request).unwrap_err();
    assert!(matches!(&error, ModelError::NoWeights { .. }), "{error}");
    assert!(error.to_string().contains("pytorch_model.bin"));
}

#[test]
fn fetch_falls_back_to_pytorch_bin() {
    let work = tempfile::tempdir().unwrap();
    let mut files = standin_files(work.path());
    files.remove("model.safetensors");
    let fixture = common::repo_root().join("model/tests/fixtures/tiny-gpt-neo/pytorch_model.bin");
    let weights = std::fs::read(&fixture).unwrap();
    files.insert("pytorch_model.bin".to_owned(), weights.clone());
    let hub = HubStandin::start(files);

    let mut request = options(
        &hub.base_url,
        &work.path().join("out"),
        &work.path().join("lock.json"),
    );
    request.revision = Some(REVISION.to_owned());
    request.update_lock = true;
    let lock = fetch(&request).unwrap();

    assert!(lock.files.contains_key("pytorch_model.bin"));
    assert!(!lock.files.contains_key("model.safetensors"));
    assert_eq!(
        std::fs::read(work.path().join("out/pytorch_model.bin")).unwrap(),
        weights
    );

    // A second fetch verifies against the recorded lock.
    request.update_lock = false;
    std::fs::remove_dir_all(work.path().join("out")).unwrap();
    fetch(&request).unwrap();
}

#[test]
fn committed_lock_is_valid() {
    let lock = read_lock(&common::repo_root().join("model/tinystories-1m.lock.json")).unwrap();
    assert_eq!(lock.repo, banter_model::fetch::DEFAULT_REPO);
    if let Some(revision) = &lock.revision {
        banter_model::fetch::check_revision(revision).unwrap();
    }
}
