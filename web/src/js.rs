//! Bindings to `web/js/ide.js`: terminals (xterm.js) and the editor and
//! its diff view (Monaco).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/ide.js")]
extern "C" {
    pub type Term;

    #[wasm_bindgen(constructor)]
    pub fn new(el: &web_sys::Element) -> Term;
    /// xterm.js parses writes later: the bytes must be JavaScript's own,
    /// not a view into the module's memory.
    #[wasm_bindgen(method)]
    pub fn write(this: &Term, bytes: &js_sys::Uint8Array);
    #[wasm_bindgen(method, js_name = writeText)]
    pub fn write_text(this: &Term, text: &str);
    #[wasm_bindgen(method)]
    pub fn reset(this: &Term);
    #[wasm_bindgen(method)]
    pub fn refit(this: &Term);
    #[wasm_bindgen(method)]
    pub fn cols(this: &Term) -> u16;
    #[wasm_bindgen(method)]
    pub fn rows(this: &Term) -> u16;
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Term, cb: &Closure<dyn FnMut(String)>);
    #[wasm_bindgen(method, js_name = onResize)]
    pub fn on_resize(this: &Term, cb: &Closure<dyn FnMut(u16, u16)>);
    #[wasm_bindgen(method)]
    pub fn focus(this: &Term);
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Term);

    /// Monaco's namespace, once loaded.
    #[wasm_bindgen(catch, js_name = loadMonaco)]
    pub async fn load_monaco() -> Result<JsValue, JsValue>;

    pub type Editor;

    #[wasm_bindgen(constructor)]
    pub fn new(
        el: &web_sys::Element,
        monaco: &JsValue,
        on_save: &Closure<dyn FnMut(String)>,
        on_change: &Closure<dyn FnMut(String)>,
    ) -> Editor;
    #[wasm_bindgen(method)]
    pub fn open(this: &Editor, path: &str, text: &str);
    #[wasm_bindgen(method)]
    pub fn replace(this: &Editor, path: &str, text: &str);
    #[wasm_bindgen(method)]
    pub fn rename(this: &Editor, from: &str, to: &str);
    #[wasm_bindgen(method)]
    pub fn value(this: &Editor, path: &str) -> String;
    #[wasm_bindgen(method)]
    pub fn language(this: &Editor, path: &str) -> String;
    #[wasm_bindgen(method)]
    pub fn close(this: &Editor, path: &str);
    #[wasm_bindgen(method)]
    pub fn dispose(this: &Editor);

    pub type DiffView;

    #[wasm_bindgen(constructor)]
    pub fn new(el: &web_sys::Element, monaco: &JsValue) -> DiffView;
    #[wasm_bindgen(method)]
    pub fn show(this: &DiffView, path: &str, before: &str, after: &str);
    #[wasm_bindgen(method)]
    pub fn dispose(this: &DiffView);

    /// Copies text to the clipboard; the promise resolves to whether it did.
    #[wasm_bindgen(js_name = copyText)]
    pub fn copy_text(text: &str) -> js_sys::Promise;
}

/// Copies `text` to the clipboard; whether it was copied.
pub async fn copy(text: &str) -> bool {
    wasm_bindgen_futures::JsFuture::from(copy_text(text))
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
