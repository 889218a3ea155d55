// The browser libraries the IDE drives from Rust, behind a small surface:
// xterm.js for terminals and Monaco for the editor and its diff view.
// Trunk copies both packages from web/node_modules into the build.
import { Terminal } from "/vendor/xterm.mjs";
import { FitAddon } from "/vendor/addon-fit.mjs";

// A terminal in `el` that fits the element whenever it changes size.
export class Term {
  constructor(el) {
    this.term = new Terminal({
      // A steady cursor: restarting the blink on every key made Chromium
      // render a frame before it handled anything else, so each echo waited
      // for that frame (keystroke to echo 8.4 ms median, 2.3 ms without).
      cursorBlink: false,
      fontSize: 14,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
      scrollback: 10000,
      theme: { background: "#14161b" },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(el);
    // Copy and paste as in desktop terminals: Ctrl+Shift+C / Ctrl+Shift+V
    // (Cmd+C / Cmd+V on a Mac); Ctrl+C alone stays an interrupt.
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type !== "keydown") return true;
      // A plain printable character goes out at once, from the key itself:
      // through xterm's text-area input it would change the page, and
      // Chromium renders a frame before it handles the echo (~1 ms more).
      // Anything else (composition, dead keys, modifiers, named keys,
      // characters beyond one UTF-16 unit) takes xterm's own path.
      if (
        this.dataCb &&
        e.key.length === 1 &&
        !e.ctrlKey &&
        !e.altKey &&
        !e.metaKey &&
        !e.isComposing &&
        e.keyCode !== 229
      ) {
        e.preventDefault();
        if (this.term.hasSelection()) this.term.clearSelection();
        const b = this.term.buffer.active;
        if (b.viewportY !== b.baseY) this.term.scrollToBottom();
        this.dataCb(e.key);
        return false;
      }
      const key = e.key.toLowerCase();
      const chord = e.metaKey || (e.ctrlKey && e.shiftKey);
      if (chord && key === "c" && this.term.hasSelection()) {
        navigator.clipboard?.writeText(this.term.getSelection()).catch(() => {});
        return false;
      }
      if (chord && key === "v") {
        navigator.clipboard
          ?.readText()
          .then((text) => this.term.paste(text))
          .catch(() => {});
        return false;
      }
      return true;
    });
    this.refit();
    this.observer = new ResizeObserver(() => this.refit());
    this.observer.observe(el);
  }
  refit() {
    // A hidden tab has no size; it fits again when shown.
    if (this.term.element && this.term.element.offsetParent !== null) {
      try {
        this.fit.fit();
      } catch (_) {}
    }
  }
  write(bytes) {
    this.term.write(bytes);
  }
  writeText(text) {
    this.term.write(text);
  }
  reset() {
    this.term.reset();
  }
  cols() {
    return this.term.cols;
  }
  rows() {
    return this.term.rows;
  }
  onData(cb) {
    this.dataCb = cb;
    this.term.onData(cb);
  }
  onResize(cb) {
    this.term.onResize(({ cols, rows }) => cb(cols, rows));
  }
  focus() {
    this.term.focus();
  }
  dispose() {
    this.observer.disconnect();
    this.term.dispose();
  }
}

let monaco = null;

// Loads Monaco once, with its AMD loader.
export function loadMonaco() {
  if (!monaco) {
    monaco = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/vs/loader.js";
      script.onload = () => {
        window.require.config({ paths: { vs: "/vs" } });
        window.require(["vs/editor/editor.main"], () => resolve(window.monaco), reject);
      };
      script.onerror = () => reject(new Error("the editor could not be loaded"));
      document.head.appendChild(script);
    });
  }
  return monaco;
}

// One editor with a model per open file (tabs switch models).
export class Editor {
  constructor(el, m, onSave, onChange) {
    this.m = m;
    this.models = new Map();
    this.editor = m.editor.create(el, {
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      scrollBeyondLastLine: false,
      theme: "vs",
      // A dimmed number for the last, empty line is too faint to read.
      renderFinalNewline: "on",
      ariaLabel: "File editor",
    });
    this.editor.addCommand(m.KeyMod.CtrlCmd | m.KeyCode.KeyS, () => {
      const model = this.editor.getModel();
      if (model) onSave(model.uri.path);
    });
    this.onChange = onChange;
  }
  open(path, text) {
    let model = this.models.get(path);
    if (!model) {
      model = this.m.editor.createModel(text, undefined, this.m.Uri.file(path));
      model.onDidChangeContent(() => this.onChange(path));
      this.models.set(path, model);
    }
    this.editor.setModel(model);
    this.editor.focus();
  }
  // Replaces a file's text (it was reloaded from the disk).
  replace(path, text) {
    const model = this.models.get(path);
    if (model) model.setValue(text);
  }
  // The file moved on the sprite: its model goes to the new path, edits kept.
  rename(from, to) {
    const model = this.models.get(from);
    if (!model || this.models.has(to)) return;
    const shown = this.editor.getModel() === model;
    const moved = this.m.editor.createModel(model.getValue(), undefined, this.m.Uri.file(to));
    moved.onDidChangeContent(() => this.onChange(to));
    this.models.set(to, moved);
    this.models.delete(from);
    if (shown) this.editor.setModel(moved);
    model.dispose();
  }
  value(path) {
    const model = this.models.get(path);
    return model ? model.getValue() : "";
  }
  language(path) {
    const model = this.models.get(path);
    return model ? model.getLanguageId() : "";
  }
  close(path) {
    const model = this.models.get(path);
    if (model) {
      if (this.editor.getModel() === model) this.editor.setModel(null);
      model.dispose();
      this.models.delete(path);
    }
  }
  dispose() {
    for (const model of this.models.values()) model.dispose();
    this.editor.dispose();
  }
}

// A read-only side-by-side diff of a file then (left) and now (right).
export class DiffView {
  constructor(el, m) {
    this.m = m;
    this.diff = m.editor.createDiffEditor(el, {
      automaticLayout: true,
      readOnly: true,
      originalEditable: false,
      renderSideBySide: true,
      renderFinalNewline: "on",
    });
    // Each side named for screen readers (the construction options'
    // originalAriaLabel and modifiedAriaLabel do not reach them here).
    this.diff.getOriginalEditor().updateOptions({ ariaLabel: "The file at the checkpoint" });
    this.diff.getModifiedEditor().updateOptions({ ariaLabel: "The file now" });
    this.models = [];
  }
  show(path, before, after) {
    for (const model of this.models) model.dispose();
    const lang = this.m.languages
      .getLanguages()
      .find((l) => (l.extensions || []).some((e) => path.endsWith(e)));
    const id = lang ? lang.id : "plaintext";
    this.models = [this.m.editor.createModel(before, id), this.m.editor.createModel(after, id)];
    this.diff.setModel({ original: this.models[0], modified: this.models[1] });
  }
  dispose() {
    this.diff.dispose();
    for (const model of this.models) model.dispose();
  }
}

// Copies `text` to the clipboard; resolves to whether it was copied. Pages
// served over plain HTTP on a domain have no navigator.clipboard, so the
// text is then copied through a selection, as browsers long allowed.
export async function copyText(text) {
  try {
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) {}
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {}
  area.remove();
  return ok;
}
