//! A static file server for the built site, bound to 127.0.0.1 only.
//!
//! One thread per connection and one request per connection (`Connection: close`): simple
//! enough to reason about, and fast enough for a site of a few dozen files. GET and HEAD
//! only.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Time a client may take to send its request line and headers.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request head (request line and headers) read, in bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A running server.
pub struct Server {
    url: String,
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Serves `root` on 127.0.0.1:`port` (0 picks a free port) from a background thread.
    pub fn start(root: &Path, port: u16) -> Result<Server, String> {
        Server::start_with_mounts(root, port, Vec::new())
    }

    /// Serves `root` like [`Server::start`], and each mount's folder under `/<prefix>/`
    /// (e.g. `("bench", target/bench)` serves `/bench/a.onnx` from `target/bench/a.onnx`).
    /// A mount takes precedence over a folder of `root` with the same name.
    pub fn start_with_mounts(
        root: &Path,
        port: u16,
        mounts: Vec<(String, PathBuf)>,
    ) -> Result<Server, String> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|error| format!("could not listen on 127.0.0.1:{port}: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("could not read the listening address: {error}"))?;
        let url = format!("http://127.0.0.1:{}/", address.port());

        let roots = Arc::new(Roots {
            site: root.to_path_buf(),
            mounts,
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_flag = stopping.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else {
                    continue;
                };
                let roots = roots.clone();
                std::thread::spawn(move || serve_connection(&roots, stream));
            }
        });
        Ok(Server {
            url,
            address,
            stopping,
            thread,
        })
    }

    /// Returns the base URL, ending in `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Blocks until the server stops.
    pub fn wait(self) {
        let _ = self.thread.join();
    }

    /// Stops accepting connections and waits for the listener thread.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // The listener blocks in accept(); one more connection wakes it to see the flag.
        let _ = TcpStream::connect(self.address);
        let _ = self.thread.join();
    }
}

/// The folders a server serves: the site at `/`, and each mount at `/<prefix>/`.
struct Roots {
    site: PathBuf,
    mounts: Vec<(String, PathBuf)>,
}

impl Roots {
    /// Maps a URL path to a file, through the first mount whose prefix matches.
    fn resolve(&self, url_path: &str) -> Option<PathBuf> {
        for (prefix, dir) in &self.mounts {
            let mounted = url_path
                .strip_prefix('/')
                .and_then(|path| path.strip_prefix(prefix.as_str()))
                .filter(|rest| rest.starts_with('/'));
            if let Some(rest) = mounted {
                return resolve(dir, rest);
            }
        }
        resolve(&self.site, url_path)
    }
}

/// Reads one request from `stream`, sends the response and closes the connection.
fn serve_connection(roots: &Roots, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(reader_stream) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader_stream);

    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers: nothing in them changes the response.
    let mut head_bytes = request_line.len();
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(read) => head_bytes += read,
        }
        if header == "\r\n" || header == "\n" {
            break;
        }
        if head_bytes > MAX_HEAD_BYTES {
            let _ = write_response(
                &stream,
                "431 Request Header Fields Too Large",
                "text/plain; charset=utf-8",
                None,
                b"request head too large\n",
            );
            return;
        }
    }

    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");

    let result = match (method, roots.resolve(path)) {
        ("GET" | "HEAD", Some(file)) => match std::fs::read(&file) {
            Ok(body) => {
                let body = if method == "HEAD" {
                    None
                } else {
                    Some(body.as_slice())
                };
                let length = std::fs::metadata(&file).map(|meta| meta.len()).unwrap_or(0);
                write_response(
                    &stream,
                    "200 OK",
                    content_type(&file),
                    Some(length),
                    body.unwrap_or(&[]),
                )
            }
            Err(_) => write_response(
                &stream,
                "404 Not Found",
                "text/plain; charset=utf-8",
                None,
                b"not found\n",
            ),
        },
        ("GET" | "HEAD", None) => write_response(
            &stream,
            "404 Not Found",
            "text/plain; charset=utf-8",
            None,
            b"not found\n",
        ),
        _ => write_response(
            &stream,
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            None,
            b"only GET and HEAD\n",
        ),
    };
    let _ = result;
    let _ = stream.shutdown(Shutdown::Both);
}

/// Writes a response with `Connection: close`. `length` overrides the Content-Length of
/// `body`, for HEAD responses that send no body.
fn write_response(
    mut stream: &TcpStream,
    status: &str,
    content_type: &str,
    length: Option<u64>,
    body: &[u8],
) -> std::io::Result<()> {
    let length = length.unwrap_or(body.len() as u64);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Maps a URL path to a file under `root`; `None` for anything outside it or missing.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    if relative
        .components()
        .any(|component| !matches!(component, Component::Normal(_)))
    {
        return None;
    }
    let mut file = root.join(relative);
    if file.is_dir() {
        file = file.join("index.html");
    }
    file.is_file().then_some(file)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|ext| ext.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rejects_parent_paths() {
        let root = std::env::temp_dir();
        assert_eq!(resolve(&root, "/../etc/passwd"), None);
        assert_eq!(resolve(&root, "/%2e%2e/etc/passwd"), None);
    }

    #[test]
    fn mount_serves_its_folder() {
        let site = empty_temp_dir("site");
        let bench = empty_temp_dir("bench");
        std::fs::write(site.join("index.html"), "site").unwrap();
        std::fs::write(bench.join("model.onnx"), "bench").unwrap();
        let roots = Roots {
            site: site.clone(),
            mounts: vec![("bench".to_owned(), bench.clone())],
        };

        assert_eq!(
            roots.resolve("/bench/model.onnx"),
            Some(bench.join("model.onnx"))
        );
        assert_eq!(roots.resolve("/index.html"), Some(site.join("index.html")));
        assert_eq!(roots.resolve("/benchmark.onnx"), None);
        assert_eq!(roots.resolve("/bench/../index.html"), None);
    }

    /// Creates an empty folder under the system's temporary folder, unique to this process.
    fn empty_temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-serve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn percent_decode_escapes() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/a%2"), None);
    }
}
