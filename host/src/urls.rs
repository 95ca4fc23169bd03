//! Where the worker, the model bundle and onnxruntime-web live by default.
//!
//! Defaults are resolved from the URL of the host module itself, so the site works at any
//! path prefix: the worker is `worker.js` next to `banter_host.js`, the bundle is the
//! site's `model/` folder and onnxruntime-web its `ort/` folder, both siblings of `pkg/`.

use wasm_bindgen::prelude::*;

use crate::error::HostError;

// wasm-bindgen places inline snippets at `pkg/snippets/<crate>-<hash>/inline<N>.js`, so
// two levels up from the snippet is the `pkg/` folder that contains `banter_host.js`.
#[wasm_bindgen(
    inline_js = "export function hostPackageUrl() { return new URL('../../', import.meta.url).href; }"
)]
extern "C" {
    #[wasm_bindgen(js_name = hostPackageUrl)]
    fn host_package_url() -> String;
}

/// Resolved URLs of everything the worker loads.
#[derive(Debug, Clone)]
pub struct SiteUrls {
    /// The worker's entry script.
    pub worker: String,
    /// The model bundle folder, ending in `/`.
    pub model: String,
    /// The onnxruntime-web folder, ending in `/`.
    pub ort: String,
}

impl SiteUrls {
    /// Resolves each URL: a given one relative to the page, a missing one to its default.
    pub fn resolve(
        worker: Option<String>,
        model: Option<String>,
        ort: Option<String>,
    ) -> Result<Self, HostError> {
        let package = host_package_url();
        let page = web_sys::window()
            .and_then(|window| window.location().href().ok())
            .unwrap_or_else(|| package.clone());

        let worker = match worker {
            Some(url) => absolute(&url, &page, "workerUrl")?,
            None => absolute("worker.js", &package, "workerUrl")?,
        };
        let model = match model {
            Some(url) => folder(absolute(&url, &page, "modelUrl")?),
            None => absolute("../model/", &package, "modelUrl")?,
        };
        let ort = match ort {
            Some(url) => folder(absolute(&url, &page, "ortUrl")?),
            None => absolute("../ort/", &package, "ortUrl")?,
        };
        Ok(SiteUrls { worker, model, ort })
    }
}

/// Resolves `url` against `base`.
fn absolute(url: &str, base: &str, option: &str) -> Result<String, HostError> {
    web_sys::Url::new_with_base(url, base)
        .map(|resolved| resolved.href())
        .map_err(|_| HostError::InvalidRequest(format!("{option} {url:?} is not a valid URL")))
}

/// Adds the trailing `/` that marks a folder.
fn folder(url: String) -> String {
    if url.ends_with('/') {
        url
    } else {
        url + "/"
    }
}

/// Returns the origin (`scheme://host:port`) of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    web_sys::Url::new(url).ok().map(|parsed| parsed.origin())
}

/// Returns the page's origin.
pub fn page_origin() -> Option<String> {
    web_sys::window().and_then(|window| window.location().origin().ok())
}
