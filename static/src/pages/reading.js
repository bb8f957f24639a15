// The reading page: keyboard-complete rating form, server-side draft autosave, idempotent
// submit with retries, error spans selected in the report text.
//
// Keys (see the help panel): a-g answer the highlighted question, j/k move between questions,
// t types into a text box (Esc leaves it), m marks a passage of the highlighted report (arrows
// and Shift+arrows choose it, Enter marks, Esc cancels), Ctrl+Enter submits, n/p go to the
// next/previous case. Viewer keys act only while the viewer has the focus, and these skip events
// aimed inside it, so one key never does two things.
import { apiFetch, readJsonScript } from "../lib/http.js";
import { moveFocus, movePlain, passageUnits, selectionOf } from "../lib/passage_keys.js";
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

function highlight(index, { scroll = true } = {}) {
  const visible = visibleItems();
  if (visible.length === 0) return;
  activeIndex = Math.max(0, Math.min(index, visible.length - 1));
  for (const item of items) item.classList.remove("active");
  const current = visible[activeIndex];
  current.classList.add("active");
  if (scroll) current.scrollIntoView({ block: "nearest" });
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
    formError.textContent = "Select a passage in the report text first (or press m).";
    return false;
  }
  const range = selection.getRangeAt(0);
  const report = form.ownerDocument.querySelector(`section.report[data-side="${CSS.escape(side)}"]`);
  const text = range.commonAncestorContainer.nodeType === Node.TEXT_NODE
    ? range.commonAncestorContainer.parentElement
    : range.commonAncestorContainer;
  const section = text && text.closest ? text.closest(".report-text") : null;
  if (!section || !report || !report.contains(section)) {
    formError.textContent = "Select the passage inside one section of this report.";
    return false;
  }
  const start = offsetWithin(section, range.startContainer, range.startOffset);
  const end = offsetWithin(section, range.endContainer, range.endOffset);
  if (end <= start) return false;
  if (spans.some((s) => s.side === side && s.section === section.dataset.section && s.start < end && start < s.end)) {
    formError.textContent = "That passage overlaps one already marked.";
    return false;
  }
  formError.textContent = "";
  spans.push({ side, section: section.dataset.section, start, end, category: "", significant: false, replacement: "" });
  selection.removeAllRanges();
  renderSpans();
  changed();
  return true;
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
      // Enter in this box would submit the whole rating (implicit form submission).
      replacement.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !(event.ctrlKey || event.metaKey)) event.preventDefault();
      });
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

// --- error spans by keyboard -----------------------------------------------------------------
// Mark mode drives the document's own selection and confirms through markSelection, so a
// passage chosen by keys is stored with exactly the offsets the mouse would give. The report
// markup is never touched (both reports stay identical).

let marking = null;

const MARK_MOVES = {
  ArrowRight: { unit: "words", forward: true },
  ArrowLeft: { unit: "words", forward: false },
  ArrowDown: { unit: "sentences", forward: true },
  ArrowUp: { unit: "sentences", forward: false },
};

function markStatus(side) {
  return form.querySelector(`[data-mark-status="${CSS.escape(side)}"]`);
}

function textPosition(element, offset) {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  let rest = offset;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (rest <= node.length) return [node, rest];
    rest -= node.length;
  }
  return [element, element.childNodes.length];
}

function drawMark() {
  const { sections, index } = marking;
  const section = sections[index];
  const chosen = selectionOf(marking);
  const range = document.createRange();
  range.setStart(...textPosition(section.element, chosen.start));
  range.setEnd(...textPosition(section.element, chosen.end));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  section.element.scrollIntoView({ block: "nearest" });
  const status = markStatus(marking.side);
  status.hidden = false;
  status.textContent = `Marking: “${section.text.slice(chosen.start, chosen.end)}”. ←/→ word, ↑/↓ sentence, Shift extends, Enter marks, Esc cancels.`;
}

function markStart() {
  const item = currentItem();
  if (item?.dataset.type !== "error_spans" || !data.can_write) return false;
  const side = item.querySelector("[data-mark-span]").dataset.markSpan;
  const report = document.querySelector(`section.report[data-side="${CSS.escape(side)}"]`);
  const sections = [...report.querySelectorAll(".report-text")]
    .map((element) => ({ element, text: element.textContent, units: passageUnits(element.textContent) }))
    .filter((section) => section.units.sentences.length > 0);
  if (sections.length === 0) return false;
  const first = sections[0].units.sentences[0];
  marking = { side, sections, index: 0, anchor: first, focus: first };
  formError.textContent = "";
  drawMark();
  return true;
}

function markEnd({ keepSelection = false } = {}) {
  if (!marking) return;
  markStatus(marking.side).hidden = true;
  if (!keepSelection) window.getSelection().removeAllRanges();
  marking = null;
}

function markMove(move, extend) {
  const section = marking.sections[marking.index];
  if (extend) {
    marking.focus = moveFocus(section.units, marking.focus, move);
    return;
  }
  let found = movePlain(section.units, selectionOf(marking), move);
  // Past either end of a section, plain moves go on into the neighbouring section.
  const step = move.forward ? 1 : -1;
  let index = marking.index;
  while (!found && marking.sections[index + step]) {
    index += step;
    const list = marking.sections[index].units[move.unit];
    found = move.forward ? list[0] : list[list.length - 1];
  }
  if (found) {
    marking.index = index;
    marking.anchor = found;
    marking.focus = found;
  }
}

function markConfirm() {
  const { side } = marking;
  drawMark();
  markEnd({ keepSelection: true });
  if (!markSelection(side)) return;
  // Reason, significance and replacement follow by Tab from the new row's reason.
  const rows = form.querySelectorAll(`[data-spans="${CSS.escape(side)}"] li`);
  rows[rows.length - 1]?.querySelector("select")?.focus();
}

// Runs before the page's other keys: while marking, arrows, Enter and Esc belong to it.
function onMarkKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return false;
  const move = MARK_MOVES[event.key];
  if (move) {
    markMove(move, event.shiftKey);
    drawMark();
  } else if (event.key === "Enter") {
    markConfirm();
  } else if (event.key === "Escape") {
    markEnd();
  } else {
    return false;
  }
  event.preventDefault();
  event.stopPropagation();
  return true;
}

document.addEventListener("pointerdown", () => markEnd({ keepSelection: true }));

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
  // No scrolling here: focus came from a click or Tab, which already shows the control, and a
  // scroll between mousedown and mouseup would land the click on another control.
  if (item) highlight(visibleItems().indexOf(item), { scroll: false });
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
  if (marking && onMarkKey(event)) return;
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
  } else if (key === "m") {
    if (markStart()) event.preventDefault();
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
