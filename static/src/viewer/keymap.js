// The viewer's keyboard and mouse map: the one list the help panel is built from. These keys act
// only while focus is inside the viewer (see viewerOwnsKey in index.js).
export const PRESETS = [
  { key: "1", name: "Soft tissue", width: 400, center: 40 },
  { key: "2", name: "Lung", width: 1500, center: -600 },
  { key: "3", name: "Liver", width: 150, center: 90 },
  { key: "4", name: "Bone", width: 2500, center: 480 },
  { key: "5", name: "Brain", width: 80, center: 40 },
  { key: "6", name: "Mediastinum", width: 350, center: 50 },
];

export const KEYS = [
  ...PRESETS.map((p) => ({ keys: [p.key], action: `preset:${p.key}`, label: `${p.name} window (W ${p.width} / L ${p.center})` })),
  { keys: ["i"], action: "invert", label: "Invert grey scale" },
  { keys: [" "], action: "reset", label: "Reset window, zoom and pan" },
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
  { keys: ["Escape"], action: "close-help", label: "Close this help, or give the keyboard back" },
];

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

const actionByKey = new Map(KEYS.flatMap((entry) => entry.keys.map((k) => [k, entry.action])));

export function actionFor(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  return actionByKey.get(event.key.length === 1 ? event.key.toLowerCase() : event.key) ?? actionByKey.get(event.key) ?? null;
}
