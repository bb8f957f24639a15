// The viewer's keyboard and mouse map: the one list the help panel and the toolbar are built
// from. Standalone, these keys act while the viewer has the focus. On the reading page the
// keyboard is shared with the rating form (lib/form_keys.js): the form's keys always go to the
// form, so presets move to Shift+digit there and the viewer's keys act wherever the focus is
// not in a form control.
import { isFormKey } from "../lib/form_keys.js";

// CT windows (Hounsfield units): the OHIF presets.
export const CT_PRESETS = [
  { key: "1", name: "Soft tissue", width: 400, center: 40 },
  { key: "2", name: "Lung", width: 1500, center: -600 },
  { key: "3", name: "Liver", width: 150, center: 90 },
  { key: "4", name: "Bone", width: 2500, center: 480 },
  { key: "5", name: "Brain", width: 80, center: 40 },
  { key: "6", name: "Mediastinum", width: 350, center: 50 },
];

// Radiographs carry no Hounsfield scale: a CT window on one is meaningless (Lung turns a chest
// film black). Their presets are relative to what the file says and what its pixels span.
export const PROJECTION_PRESETS = [
  { key: "1", name: "Default", kind: "initial", label: "The window the file asks for" },
  { key: "2", name: "Full range", kind: "full", label: "Every grey level of the image" },
  { key: "3", name: "More contrast", kind: "scale", factor: 0.7, label: "Window 30% narrower" },
  { key: "4", name: "Most contrast", kind: "scale", factor: 0.45, label: "Window 55% narrower" },
  { key: "5", name: "Less contrast", kind: "scale", factor: 1.4, label: "Window 40% wider" },
];

/** The presets offered for a layout mode ("projection": radiographs; "stack": CT and MR). */
export function presetsFor(mode) {
  return mode === "projection" ? PROJECTION_PRESETS : CT_PRESETS;
}

function presetLabel(p) {
  return p.width ? `${p.name} window (W ${p.width} / L ${p.center})` : `${p.name}: ${p.label.toLowerCase()}`;
}

const OTHER_KEYS = [
  { keys: ["i"], action: "invert", label: "Invert grey scale" },
  { keys: [" "], action: "reset", label: "Reset: the display the image opened with" },
  { keys: ["+", "="], action: "zoom-in", label: "Zoom in" },
  { keys: ["-"], action: "zoom-out", label: "Zoom out" },
  { keys: ["z"], action: "actual-size", label: "1:1 pixels (again: fit to window)" },
  { keys: ["ArrowUp", "ArrowLeft"], action: "previous", label: "Previous slice" },
  { keys: ["ArrowDown", "ArrowRight"], action: "next", label: "Next slice" },
  { keys: ["PageUp"], action: "page-up", label: "Ten slices back" },
  { keys: ["PageDown"], action: "page-down", label: "Ten slices on" },
  { keys: ["Home"], action: "first", label: "First slice" },
  { keys: ["End"], action: "last", label: "Last slice" },
  { keys: ["["], action: "previous-series", label: "Previous series" },
  { keys: ["]"], action: "next-series", label: "Next series" },
  { keys: ["?"], action: "help", label: "Show or hide this help" },
  { keys: ["Escape"], action: "close-help", label: "Close this help, or leave the viewer" },
];

/**
 * The key list for a set of presets; ``shared``: the keyboard is shared with the reading form,
 * so presets are on Shift+digit and no key the form owns is listed.
 */
export function keysFor(presets, { shared = false } = {}) {
  const presetKeys = presets.map((p) => ({
    keys: [shared ? `Shift+${p.key}` : p.key],
    action: `preset:${p.key}`,
    label: presetLabel(p),
  }));
  return [...presetKeys, ...OTHER_KEYS];
}

export const MOUSE = [
  ["Left drag", "Window / level"],
  ["Middle drag", "Pan"],
  ["Right drag", "Zoom"],
  ["Wheel", "Scroll through slices"],
  ["Shift + left drag", "Magnifier"],
];

const KEY_NAMES = { " ": "Space", ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→" };

export function keyName(key) {
  return KEY_NAMES[key] ?? key;
}

/** The name of a key press as the lists above spell it (Shift+digit by its key, not "!"). */
function pressName(event) {
  const digit = /^Digit([0-9])$/.exec(event.code || "");
  if (event.shiftKey && digit) return `Shift+${digit[1]}`;
  return event.key.length === 1 ? event.key.toLowerCase() : event.key;
}

/** The action of a key press in a key list, or null (never one of the form's keys when shared). */
export function actionFor(event, keys, { shared = false } = {}) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  if (shared && isFormKey(event)) return null;
  const name = pressName(event);
  const entry = keys.find((k) => k.keys.includes(name) || k.keys.includes(event.key));
  return entry ? entry.action : null;
}
