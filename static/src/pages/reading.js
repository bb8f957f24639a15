// The reading page: keyboard-complete rating form, server-side draft autosave, idempotent
// submit with retries, error spans selected in the report text.
//
// Keys (see the help panel): a-g answer the highlighted question, j/k move between questions,
// t types into a text box (Esc leaves it), Ctrl+Enter submits, n/p go to the next/previous
// case. None of these are viewer keys (1-6, i, r, space, arrows, PgUp/PgDn, Home/End, +/-, m,
// h, ?), so both can listen at once.
import { apiFetch, readJsonScript } from "../lib/http.js";
import { newIdempotencyKey } from "../lib/rating_keys.js";

const data = readJsonScript("case-data");
const form = document.querySelector("[data-rating-form]");
const saveState = document.querySelector("[data-save-state]");
const formError = document.querySelector("[data-form-error]");
const submitButton = document.querySelector("[data-submit]");
const base = `/api/v1/my/assignments/${data.assignment}`;
const items = [...form.querySelectorAll("fieldset.item")];
const OPTION_KEYS = "abcdefg";

let activeIndex = 0;
let ratingVersion = data.rating ? data.rating.version : null;
let spans = [];
let draftTimer = null;
let dirty = false;
let seq = Math.max(Date.now(), (data.draft_seq || 0) + 1);
let activeSeconds = 0;
let lastActivity = Date.now();
let submitting = false;

// --- state <-> form --------------------------------------------------------------------------

function answersFromForm() {
  const answers = {};
  for (const item of items) {
    if (item.hidden) continue;
    const id = item.dataset.item;
    const checked = item.querySelector("input[type=radio]:checked");
    if (checked) answers[id] = checked.value;
    const text = item.querySelector("textarea");
    if (text && text.value.trim() !== "") answers[id] = text.value;
  }
  return answers;
}

function restore(answers, savedSpans) {
  for (const [id, value] of Object.entries(answers || {})) {
    const item = form.querySelector(`fieldset.item[data-item="${CSS.escape(id)}"]`);
    if (!item) continue;
    const radio = item.querySelector(`input[type=radio][value="${CSS.escape(value)}"]`);
    if (radio) radio.checked = true;
    const text = item.querySelector("textarea");
    if (text) text.value = value;
  }
  spans = (savedSpans || []).map((s) => ({ ...s }));
  renderSpans();
  applyConditions();
}

function applyConditions() {
  for (const item of items) {
    const target = item.dataset.showIf;
    if (!target) continue;
    const source = form.querySelector(`fieldset.item[data-item="${CSS.escape(target)}"]`);
    const chosen = source && !source.hidden ? source.querySelector("input:checked") : null;
    const codes = item.dataset.showCodes.split(" ");
    item.hidden = !(chosen && codes.includes(chosen.value));
  }
}

function visibleItems() {
  return items.filter((item) => !item.hidden);
}

function highlight(index) {
  const visible = visibleItems();
  if (visible.length === 0) return;
  activeIndex = Math.max(0, Math.min(index, visible.length - 1));
  for (const item of items) item.classList.remove("active");
  const current = visible[activeIndex];
  current.classList.add("active");
  current.scrollIntoView({ block: "nearest" });
}

function currentItem() {
  return visibleItems()[activeIndex];
}

// --- draft autosave --------------------------------------------------------------------------

function setState(text, isError = false) {
  saveState.textContent = text;
  saveState.classList.toggle("error", isError);
}

async function saveDraft({ keepalive = false } = {}) {
  if (!dirty || !data.can_write) return;
  dirty = false;
  seq = Math.max(seq + 1, Date.now());
  const body = {
    draft: { answers: answersFromForm(), spans },
    seq,
    active_seconds: Math.round(activeSeconds),
  };
  try {
    await apiFetch(`${base}/draft`, { method: "PUT", body, keepalive });
    setState(ratingVersion ? `Draft saved (submitted version ${ratingVersion})` : "Draft saved");
  } catch (error) {
    dirty = true;
    setState(`Draft not saved: ${error.message}`, true);
  }
}

function changed() {
  dirty = true;
  lastActivity = Date.now();
  applyConditions();
  clearTimeout(draftTimer);
  draftTimer = setTimeout(saveDraft, 500);
}

// Active time: seconds the page is visible with input in the last minute.
setInterval(() => {
  if (document.visibilityState === "visible" && Date.now() - lastActivity < 60000) {
    activeSeconds += 1;
  }
}, 1000);
for (const type of ["pointerdown", "keydown", "wheel"]) {
  document.addEventListener(type, () => { lastActivity = Date.now(); }, { passive: true });
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") saveDraft({ keepalive: true });
});
window.addEventListener("pagehide", () => saveDraft({ keepalive: true }));

// --- error spans -----------------------------------------------------------------------------

function offsetWithin(element, node, offset) {
  const range = document.createRange();
  range.selectNodeContents(element);
  range.setEnd(node, offset);
  return range.toString().length;
}

function markSelection(side) {
  const selection = window.getSelection();
  if (!selection || selection.isCollapsed) {
    formError.textContent = "Select a passage in the report text first.";
    return;
  }
  const range = selection.getRangeAt(0);
  const report = form.ownerDocument.querySelector(`section.report[data-side="${CSS.escape(side)}"]`);
  const text = range.commonAncestorContainer.nodeType === Node.TEXT_NODE
    ? range.commonAncestorContainer.parentElement
    : range.commonAncestorContainer;
  const section = text && text.closest ? text.closest(".report-text") : null;
  if (!section || !report || !report.contains(section)) {
    formError.textContent = "Select the passage inside one section of this report.";
    return;
  }
  const start = offsetWithin(section, range.startContainer, range.startOffset);
  const end = offsetWithin(section, range.endContainer, range.endOffset);
  if (end <= start) return;
  if (spans.some((s) => s.side === side && s.section === section.dataset.section && s.start < end && start < s.end)) {
    formError.textContent = "That passage overlaps one already marked.";
    return;
  }
  formError.textContent = "";
  spans.push({ side, section: section.dataset.section, start, end, category: "", significant: false, replacement: "" });
  selection.removeAllRanges();
  renderSpans();
  changed();
}

function categoriesFor(side) {
  const item = data.form.find((i) => i.type === "error_spans" && i.side === side);
  return item ? item.categories : [];
}

function renderSpans() {
  for (const list of form.querySelectorAll("[data-spans]")) {
    const side = list.dataset.spans;
    list.replaceChildren();
    spans.forEach((span, index) => {
      if (span.side !== side) return;
      const report = document.querySelector(`section.report[data-side="${CSS.escape(side)}"] .report-text[data-section="${span.section}"]`);
      const quoted = report ? report.textContent.slice(span.start, span.end) : "";
      const row = document.createElement("li");
      const quote = document.createElement("q");
      quote.textContent = quoted;
      const category = document.createElement("select");
      category.append(new Option("Reason…", ""));
      for (const c of categoriesFor(side)) category.append(new Option(c.label, c.code));
      category.value = span.category;
      category.addEventListener("change", () => { span.category = category.value; changed(); });
      const significantLabel = document.createElement("label");
      const significant = document.createElement("input");
      significant.type = "checkbox";
      significant.checked = span.significant;
      significant.addEventListener("change", () => { span.significant = significant.checked; changed(); });
      significantLabel.append(significant, " clinically significant");
      const replacement = document.createElement("input");
      replacement.type = "text";
      replacement.placeholder = "Replacement text";
      replacement.value = span.replacement;
      replacement.addEventListener("input", () => { span.replacement = replacement.value; changed(); });
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => { spans.splice(index, 1); renderSpans(); changed(); });
      row.append(quote, category, significantLabel, replacement, remove);
      list.append(row);
    });
  }
}

for (const button of form.querySelectorAll("[data-mark-span]")) {
  button.addEventListener("click", () => markSelection(button.dataset.markSpan));
}

// --- submit ----------------------------------------------------------------------------------

function keyStorage() {
  return `rating-key:${data.assignment}:${ratingVersion || 0}`;
}

async function submit() {
  if (submitting || !data.can_write) return;
  submitting = true;
  submitButton.disabled = true;
  formError.textContent = "";
  clearTimeout(draftTimer);
  const answers = answersFromForm();
  const payload = {
    answers,
    spans: spans.map(({ side, section, start, end, category, significant, replacement }) => ({ side, section, start, end, category, significant, replacement })),
    active_seconds: Math.round(activeSeconds),
  };
  // One key per intended write, kept across retries and reloads until it succeeds, so a
  // lost response never turns into a second rating.
  let key = sessionStorage.getItem(keyStorage());
  const fingerprint = JSON.stringify(payload.answers) + JSON.stringify(payload.spans);
  if (!key || sessionStorage.getItem(`${keyStorage()}:payload`) !== fingerprint) {
    key = newIdempotencyKey();
    sessionStorage.setItem(keyStorage(), key);
    sessionStorage.setItem(`${keyStorage()}:payload`, fingerprint);
  }
  const isRevision = ratingVersion !== null;
  const body = { ...payload, idempotency_key: key, ...(isRevision ? { version: ratingVersion } : {}) };
  setState("Saving…");
  let result = null;
  for (let attempt = 0; attempt < 5 && result === null; attempt += 1) {
    try {
      result = await apiFetch(`${base}/rating`, { method: isRevision ? "PUT" : "POST", body });
    } catch (error) {
      if (error.status && error.status < 500) {
        formError.textContent = error.message;
        setState("Not saved", true);
        submitting = false;
        submitButton.disabled = false;
        return;
      }
      setState(`Connection problem, retrying… (${error.message})`, true);
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
  submitting = false;
  submitButton.disabled = false;
  if (result === null) {
    formError.textContent = "Could not reach the server. Your draft is kept; press Ctrl+Enter to try again.";
    return;
  }
  sessionStorage.removeItem(keyStorage());
  sessionStorage.removeItem(`${keyStorage()}:payload`);
  dirty = false;
  ratingVersion = result.version;
  setState(`Submitted (version ${result.version})`);
  if (!isRevision) {
    window.location.assign(`/studies/reading/${data.study.id}/continue/`);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
form.addEventListener("change", changed);
form.addEventListener("input", (event) => {
  if (event.target.tagName === "TEXTAREA") changed();
});
form.addEventListener("focusin", (event) => {
  const item = event.target.closest("fieldset.item");
  if (item) highlight(visibleItems().indexOf(item));
});

// --- keyboard --------------------------------------------------------------------------------

function isTyping(target) {
  return target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text") || target.tagName === "SELECT");
}

function navigate(direction) {
  const link = document.querySelector(`[data-nav="${direction}"]`);
  if (!link) return;
  saveDraft().finally(() => window.location.assign(link.href));
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    submit();
    return;
  }
  if (isTyping(event.target)) {
    if (event.key === "Escape") {
      event.target.blur();
      highlight(activeIndex);
    }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  // Keys typed while the viewer has focus belong to the viewer.
  if (event.target.closest && event.target.closest("[data-viewer]")) return;
  const key = event.key.toLowerCase();
  const item = currentItem();
  if (OPTION_KEYS.includes(key) && key.length === 1 && item) {
    const radio = item.querySelector(`input[type=radio][value="${key}"]`);
    if (radio && data.can_write) {
      event.preventDefault();
      radio.checked = true;
      changed();
      highlight(activeIndex + 1);
    }
  } else if (key === "j") {
    highlight(activeIndex + 1);
  } else if (key === "k") {
    highlight(activeIndex - 1);
  } else if (key === "t" && item) {
    const text = item.querySelector("textarea");
    if (text) {
      event.preventDefault();
      text.focus();
    }
  } else if (key === "n") {
    navigate("next");
  } else if (key === "p") {
    navigate("previous");
  }
});

// --- start -----------------------------------------------------------------------------------

if (data.draft && Object.keys(data.draft).length > 0) {
  restore(data.draft.answers, data.draft.spans);
  setState(data.rating ? `Unsaved revision restored (submitted version ${data.rating.version})` : "Draft restored");
} else if (data.rating) {
  restore(data.rating.answers, data.rating.spans);
} else {
  applyConditions();
}
if (!data.can_write) {
  for (const input of form.querySelectorAll("input, textarea, select, button")) input.disabled = true;
}
const firstOpen = visibleItems().findIndex((item) => !item.querySelector("input:checked") && !(item.querySelector("textarea") || {}).value);
highlight(firstOpen >= 0 ? firstOpen : 0);
