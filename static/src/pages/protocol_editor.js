// Protocol editor: a structured form over the protocol JSON in the page's <textarea name=protocol>.
// The textarea stays the one thing submitted (and the whole editor without JavaScript); this
// script draws questions and options from it and writes every change back. Rules live on the
// server (schema + protocol_validate): problems it reports come back beside the question they
// name.
import { readJsonScript } from "../lib/http.js";

const form = document.querySelector("[data-protocol-form]");
const root = form.querySelector("[data-protocol-editor]");
const source = form.querySelector("textarea[name=protocol]");
const jsonBox = form.querySelector("[data-json-box]");
const readOnly = root.hasAttribute("data-readonly");
const problems = readJsonScript("protocol-problems") || [];

const TYPES = [
  ["single_choice", "Single choice"],
  ["likert", "Ordinal / Likert scale"],
  ["yes_no", "Yes / no"],
  ["free_text", "Free text"],
  ["error_spans", "Error spans (passages marked in the report)"],
];
const SCOPES = [
  ["comparative", "Comparative (about the pair A/B)"],
  ["per_report", "Per report (asked of each report shown)"],
];
const HAS_OPTIONS = new Set(["single_choice", "likert"]);

let doc = null;

function sync() {
  source.value = JSON.stringify(doc, null, 2);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  node.append(...children);
  if (readOnly && ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(node.tagName)) node.disabled = true;
  return node;
}

// A labelled control bound to obj[key]; empty optional text removes the key (the schema
// rejects empty strings where a value is optional, e.g. "short").
function field(label, obj, key, { kind = "text", choices = null, optional = false, onChange = null } = {}) {
  let control;
  const update = (value) => {
    if (optional && (value === "" || value === null)) delete obj[key];
    else obj[key] = value;
    sync();
    if (onChange) onChange();
  };
  if (choices) {
    control = el("select", { onchange: () => update(control.value) }, ...choices.map(([v, l]) => new Option(l, v)));
    control.value = obj[key] ?? choices[0][0];
  } else if (kind === "checkbox") {
    control = el("input", { type: "checkbox", onchange: () => update(control.checked) });
    control.checked = Boolean(obj[key]);
  } else if (kind === "number") {
    control = el("input", { type: "number", step: "1", oninput: () => update(control.value === "" ? null : Number(control.value)) });
    control.value = obj[key] ?? "";
  } else if (kind === "textarea") {
    control = el("textarea", { rows: "2", oninput: () => update(control.value) });
    control.value = obj[key] ?? "";
  } else {
    control = el("input", { type: "text", oninput: () => update(control.value) });
    control.value = obj[key] ?? "";
  }
  return el("label", { class: kind === "checkbox" ? "check" : "" }, kind === "checkbox" ? control : label, kind === "checkbox" ? ` ${label}` : control);
}

function moveButtons(list, index, what) {
  const move = (step) => {
    const [item] = list.splice(index, 1);
    list.splice(index + step, 0, item);
    changedStructure();
  };
  return [
    el("button", { type: "button", "aria-label": `Move ${what} up`, title: "Move up", disabled: index === 0, onclick: () => move(-1) }, "↑"),
    el("button", { type: "button", "aria-label": `Move ${what} down`, title: "Move down", disabled: index === list.length - 1, onclick: () => move(1) }, "↓"),
    el("button", { type: "button", "aria-label": `Remove ${what}`, title: "Remove", onclick: () => { list.splice(index, 1); changedStructure(); } }, "✕"),
  ];
}

function optionsEditor(question, key, { withAxis }) {
  const list = question[key];
  const what = key === "categories" ? "reason" : "option";
  const rows = list.map((option, index) =>
    el(
      "li",
      { class: "option-row" },
      field("Code", option, "value"),
      field("Label", option, "label"),
      ...(key === "options" ? [field("Short label (optional)", option, "short", { optional: true })] : []),
      ...(withAxis ? [field("Favours (+ cand. / − orig.)", option, "axis", { kind: "number" })] : []),
      ...moveButtons(list, index, `${what} ${index + 1}`),
    ),
  );
  const add = el("button", {
    type: "button",
    onclick: () => {
      list.push({ value: `${what}_${list.length + 1}`, label: "" });
      changedStructure();
    },
  }, `Add ${what}`);
  const note = withAxis
    ? el("p", { class: "muted", text: "Favours: how strongly an option favours the candidate report (+) or the original (−); leave empty for options that favour neither. Readers see these options ordered by how they favour Report A, so give opposing options mirrored wording and opposite values." })
    : "";
  return el("fieldset", { class: "options" }, el("legend", { text: key === "categories" ? "Reasons" : "Options (the reader sees letters a, b, … in this order)" }), note, el("ol", {}, ...rows), add);
}

function showIfEditor(question, index) {
  const earlier = doc.questions.slice(0, index).filter((q) => q.type !== "free_text" && q.type !== "error_spans");
  if (earlier.length === 0 && !question.show_if) return el("span");
  const condition = question.show_if || { question: "", in: [] };
  const target = el("select", {}, new Option("always", ""), ...earlier.map((q) => new Option(`when ${q.id} is`, q.id)));
  target.value = condition.question;
  const values = el("input", { type: "text", placeholder: "option codes, comma-separated" });
  values.value = condition.in.join(", ");
  const update = () => {
    const chosen = values.value.split(",").map((v) => v.trim()).filter(Boolean);
    if (target.value) question.show_if = { question: target.value, in: chosen };
    else delete question.show_if;
    sync();
  };
  target.addEventListener("change", update);
  values.addEventListener("input", update);
  if (readOnly) target.disabled = values.disabled = true;
  return el("div", { class: "show-if" }, el("label", {}, "Ask ", target), el("label", {}, "one of ", values));
}

function problemsFor(matches) {
  const found = problems.filter((p) => matches.some((m) => p.startsWith(m)));
  return found.length ? el("ul", { class: "error field-errors" }, ...found.map((p) => el("li", { text: p }))) : "";
}

function questionCard(question, index) {
  const typeChanged = () => {
    if (HAS_OPTIONS.has(question.type)) {
      question.options ??= [{ value: "option_1", label: "" }, { value: "option_2", label: "" }];
    } else {
      delete question.options;
    }
    if (question.type === "error_spans") question.categories ??= [{ value: "reason_1", label: "" }];
    else delete question.categories;
    changedStructure();
  };
  const body = [
    el("div", { class: "row" },
      field("Id", question, "id"),
      field("Type", question, "type", { choices: TYPES, onChange: typeChanged }),
      field("Asked", question, "scope", { choices: SCOPES, onChange: changedStructure }),
    ),
    field("Question", question, "prompt", { kind: "textarea" }),
    field("Help (optional)", question, "help", { optional: true }),
    field("Required", question, "required", { kind: "checkbox" }),
  ];
  if (HAS_OPTIONS.has(question.type)) {
    body.push(optionsEditor(question, "options", { withAxis: question.scope === "comparative" }));
  } else if (question.type === "error_spans") {
    body.push(optionsEditor(question, "categories", { withAxis: false }));
  }
  body.push(showIfEditor(question, index));
  return el(
    "li",
    { class: "question card", "data-question": String(index) },
    el("div", { class: "question-head" }, el("strong", { text: `Question ${index + 1}` }), ...moveButtons(doc.questions, index, `question ${index + 1}`)),
    problemsFor([`questions/${index}/`, `questions/${index}:`, `question ${question.id}:`]),
    ...body,
  );
}

function addQuestion(type) {
  let n = doc.questions.length + 1;
  while (doc.questions.some((q) => q.id === `q${n}`)) n += 1;
  const question = { id: `q${n}`, type, scope: doc.mode === "pairwise" ? "comparative" : "per_report", prompt: "", required: true };
  if (HAS_OPTIONS.has(type)) question.options = [{ value: "option_1", label: "" }, { value: "option_2", label: "" }];
  if (type === "error_spans") question.categories = [{ value: "reason_1", label: "" }];
  doc.questions.push(question);
  changedStructure();
}

function render() {
  const adder = el("select", { "aria-label": "Type of the new question" }, ...TYPES.map(([v, l]) => new Option(l, v)));
  const outcomes = (doc.outcomes || []).map((outcome, index) =>
    el("li", {}, `${outcome.label} (${outcome.id}): question ${outcome.question}`, ...moveButtons(doc.outcomes, index, `outcome ${outcome.id}`).slice(2)),
  );
  root.replaceChildren(
    el("fieldset", { class: "protocol-head" },
      el("legend", { text: "Protocol" }),
      problemsFor(["(document)", "key", "title", "version", "mode"]),
      el("div", { class: "row" },
        field("Title", doc, "title"),
        field("Key", doc, "key"),
        field("Version", doc, "version", { kind: "number" }),
        field("Mode", doc, "mode", { choices: [["pairwise", "Pairwise (Report A and Report B)"], ["single", "Single report"]], onChange: changedStructure }),
      ),
      field("Description (optional)", doc, "description", { optional: true, kind: "textarea" }),
      field("Instructions shown to readers (optional)", doc, "instructions", { optional: true, kind: "textarea" }),
      el("p", { class: "muted", text: "In prompts and labels, {Candidate} and {Original} show as \"Report A\" or \"Report B\", whichever side each report is on; {cand_short} / {orig_short} as \"A\" / \"B\"." }),
    ),
    el("ol", { class: "questions" }, ...doc.questions.map(questionCard)),
    readOnly ? "" : el("p", {}, adder, " ", el("button", { type: "button", onclick: () => addQuestion(adder.value) }, "Add question")),
    outcomes.length ? el("fieldset", {}, el("legend", { text: "Derived outcomes (used by the analysis)" }), problemsFor(["outcome "]), el("ol", {}, ...outcomes)) : "",
  );
}

function changedStructure() {
  sync();
  render();
}

function load() {
  try {
    const parsed = JSON.parse(source.value);
    if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.questions)) return false;
    doc = parsed;
  } catch {
    return false;
  }
  render();
  return true;
}

// Typing in the JSON box redraws the form once the text parses again.
source.addEventListener("input", () => load());
if (load()) jsonBox.open = false;
