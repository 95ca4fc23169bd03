//! Lets ort-web's loader run inside a Web Worker.
//!
//! ort-web 0.5 loads onnxruntime-web by appending a `<script>` element to
//! `document.head` and waiting for its `load` event, then marks `window.ort` with
//! `Object.defineProperty`. A worker has neither `window` nor `document`, and the failure
//! surfaces only as an unrelated TypeError with the worker left hanging. The shim below
//! gives the loader a minimal `document` whose script element runs a dynamic `import()`
//! of the module build instead, and copies the module namespace into a plain object,
//! because `defineProperty` rejects a namespace object. Preload `<link>`s are ignored.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function installOrtWorkerShim() {
  if (typeof document !== 'undefined') {
    return;
  }
  function makeElement(tagName) {
    const listeners = { load: [], error: [] };
    return {
      tagName: String(tagName).toUpperCase(),
      src: '',
      href: '',
      rel: '',
      setAttribute(name, value) { this[name] = value; },
      addEventListener(type, listener) { (listeners[type] = listeners[type] || []).push(listener); },
      dispatch(type, event) { for (const listener of listeners[type] || []) listener(event); },
    };
  }
  const head = {
    appendChild(element) {
      if (element.tagName !== 'SCRIPT') {
        return element;
      }
      import(element.src).then(
        (namespace) => {
          globalThis.ort = Object.assign({}, namespace);
          element.dispatch('load', {});
        },
        (error) => element.dispatch('error', { error }),
      );
      return element;
    },
  };
  globalThis.window = globalThis;
  globalThis.document = { head, createElement: makeElement };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = installOrtWorkerShim)]
    fn install_ort_worker_shim();
}

/// Installs the shim when running without a `document`; does nothing on a page.
pub fn install() {
    install_ort_worker_shim();
}
