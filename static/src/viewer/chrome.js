// What the viewer shows around its images: the toolbar, the status line (loading and errors),
// and the help panel built from the key map. No Cornerstone.
import { FORM_KEYS } from "../lib/form_keys.js";
import { el } from "./dom.js";
import { MOUSE, keyName } from "./keymap.js";

function keyTable(entries) {
  return el(
    "table",
    {},
    el("tbody", {}, ...entries.map((k) => el("tr", {}, el("th", { text: k.keys.map(keyName).join(" / ") }), el("td", { text: k.label })))),
  );
}

// Shared keyboard (the reading page): one help for the whole page, the form's keys first.
export function helpBuild(container, keys, { shared }) {
  const parts = shared
    ? [
        el("h2", { text: "Keyboard" }),
        el("p", {
          text: "Answer keys always go to the form, wherever you clicked or dragged last; the viewer's keys work whenever you are not typing in a box.",
        }),
        el("h3", { text: "Answering" }),
        keyTable(FORM_KEYS),
        el("h3", { text: "Images" }),
      ]
    : [
        el("h2", { text: "Viewer shortcuts" }),
        el("p", { text: "Keys act while the viewer has the keyboard: click an image to give it, press Tab to leave." }),
      ];
  container.replaceChildren(
    ...parts,
    keyTable(keys),
    el(
      "table",
      {},
      el("tbody", {}, ...MOUSE.map(([what, does]) => el("tr", {}, el("th", { text: what }), el("td", { text: does })))),
    ),
  );
}

/**
 * Lay the viewer's parts into ``element`` (keeping a server-rendered help panel): returns
 * { toolbar, seriesSelect, presetBox, tilesBox, status, help, helpWasServerRendered }.
 */
export function chromeBuild(element, keys, { shared }) {
  element.classList.add("viewer", "viewer-mounted");
  if (!element.hasAttribute("tabindex")) element.tabIndex = 0;
  element.setAttribute("role", "application");
  element.setAttribute("aria-label", "Image viewer");

  const seriesSelect = el("select", { class: "viewer-series", "aria-label": "Series", hidden: "" });
  // Filled once the study's modality is known: radiographs and CT get different presets.
  const presetBox = el("span", { class: "viewer-presets" });
  const toolbar = el(
    "div",
    { class: "viewer-toolbar", role: "toolbar", "aria-label": "Viewer tools" },
    seriesSelect,
    presetBox,
    el("button", { type: "button", dataset: { action: "invert" }, title: "Invert (i)", text: "Invert" }),
    el("button", { type: "button", dataset: { action: "zoom-out" }, title: "Zoom out (-)", "aria-label": "Zoom out", text: "−" }),
    el("button", { type: "button", dataset: { action: "zoom-in" }, title: "Zoom in (+)", "aria-label": "Zoom in", text: "+" }),
    el("button", { type: "button", dataset: { action: "actual-size" }, title: "1:1 pixels (z)", text: "1:1" }),
    el("button", { type: "button", dataset: { action: "reset" }, title: "Reset (Space)", text: "Reset" }),
    el("button", { type: "button", dataset: { action: "help" }, title: "Shortcuts (?)", "aria-expanded": "false", text: "?" }),
  );
  const tilesBox = el("div", { class: "viewer-tiles" });
  const status = el("div", { class: "viewer-status", role: "status", "aria-live": "polite", text: "Loading images…" });
  let help = element.querySelector("[data-viewer-help]");
  const helpWasServerRendered = Boolean(help);
  if (!help) help = el("aside", { class: "viewer-help", "data-viewer-help": "" });
  help.hidden = true;
  helpBuild(help, keys, { shared });
  element.replaceChildren(toolbar, tilesBox, status, help);
  return { toolbar, seriesSelect, presetBox, tilesBox, status, help, helpWasServerRendered };
}

/** Undo chromeBuild: the element is as the server rendered it. */
export function chromeRemove(element, ui) {
  element.replaceChildren(...(ui.helpWasServerRendered ? [ui.help] : []));
  element.classList.remove("viewer-mounted");
  delete element.dataset.viewerReady;
}

/** The status line: empty hides it; an error stays until replaced. */
export function statusSet(ui, text, isError = false) {
  ui.status.textContent = text;
  ui.status.hidden = !text;
  ui.status.classList.toggle("viewer-error", isError);
}

/** One toolbar button per preset (Shift+digit where the keyboard is shared with the form). */
export function presetsShow(ui, presets, keys, { shared }) {
  ui.presetBox.replaceChildren(
    ...presets.map((p) => {
      const key = shared ? `Shift+${p.key}` : p.key;
      return el("button", { type: "button", class: "viewer-preset", title: `${p.label ?? p.name} (${key})`, dataset: { preset: p.key }, text: p.name });
    }),
  );
  helpBuild(ui.help, keys, { shared });
}

export function helpToggle(ui, show = ui.help.hidden) {
  ui.help.hidden = !show;
  ui.toolbar.querySelector('[data-action="help"]')?.setAttribute("aria-expanded", String(show));
}

/** The series menu, shown only when there is a choice. */
export function seriesMenuFill(ui, labels) {
  if (labels.length < 2) return;
  ui.seriesSelect.replaceChildren(...labels.map((text, index) => el("option", { value: String(index), text })));
  ui.seriesSelect.hidden = false;
}
