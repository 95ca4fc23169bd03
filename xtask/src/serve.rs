//! A static file server for the built site, bound to 127.0.0.1 only.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Response, StatusCode};

/// A running server.
pub struct Server {
    server: Arc<tiny_http::Server>,
    url: String,
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
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|error| format!("could not listen on 127.0.0.1:{port}: {error}"))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|address| address.port())
            .unwrap_or(port);
        let server = Arc::new(server);
        let url = format!("http://127.0.0.1:{port}/");

        let roots = Arc::new(Roots {
            site: root.to_path_buf(),
            mounts,
        });
        let listener = server.clone();
        let thread = std::thread::spawn(move || {
            for request in listener.incoming_requests() {
                let roots = roots.clone();
                std::thread::spawn(move || respond(&roots, request));
            }
        });
        Ok(Server {
            server,
            url,
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

    /// Stops accepting requests and waits for the listener thread.
    pub fn stop(self) {
        self.server.unblock();
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

fn respond(roots: &Roots, request: tiny_http::Request) {
    let path = request
        .url()
        .split(['?', '#'])
        .next()
        .unwrap_or("/")
        .to_owned();
    let response = match roots.resolve(&path) {
        Some(file) => match std::fs::File::open(&file) {
            Ok(handle) => {
                let mut response = Response::from_file(handle);
                for (name, value) in [
                    ("Content-Type", content_type(&file)),
                    ("Cache-Control", "no-cache"),
                ] {
                    if let Ok(header) = Header::from_bytes(name, value) {
                        response.add_header(header);
                    }
                }
                response.boxed()
            }
            Err(_) => not_found(),
        },
        None => not_found(),
    };
    let _ = request.respond(response);
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

fn not_found() -> tiny_http::ResponseBox {
    Response::from_string("not found\n")
        .with_status_code(StatusCode(404))
        .boxed()
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
