// The reading page: keyboard-complete rating form, server-side draft autosave, idempotent
// submit with retries, error spans selected in the report text.
//
// Keys (lib/form_keys.js, shown in the page's ? help): a-g or 1-9 answer the highlighted
// question, j/k move between questions, t types into a text box (Esc leaves it), m marks a
// passage of the highlighted report (arrows and Shift+arrows choose it, Enter marks, Esc
// cancels), Ctrl+Enter submits, n/p go to the next/previous case. These keys reach the form
// wherever the focus is, the image included; the viewer keeps only keys the form does not use
// (its map is built without them), so one key never does two things and no click or drag
// changes what a key does.
import { OPTION_LETTERS } from "../lib/form_keys.js";
import { apiFetch, errorText, readJsonScript } from "../lib/http.js";
import { moveFocus, movePlain, passageUnits, selectionOf } from "../lib/passage_keys.js";
import { newIdempotencyKey } from "../lib/rating_keys.js";
import { reconnectingSocket } from "../lib/socket.js";

// --- one case ----------------------------------------------------------------------------------

// Everything of one case: its form, its keys, its draft and its status socket. Listeners on the
// window and document go with ``signal``, so that moving to another case (caseGo) leaves none
// of this case's behind.
function caseStart(signal) {
  const data = readJsonScript("case-data");
  const form = document.querySelector("[data-rating-form]");
  const saveState = document.querySelector("[data-save-state]");
  const formError = document.querySelector("[data-form-error]");
  const submitButton = document.querySelector("[data-submit]");
  const base = `/api/v1/my/assignments/${data.assignment}`;
  const items = [...form.querySelectorAll("fieldset.item")];
  const studyNotice = document.querySelector("[data-study-notice]");

  let activeIndex = 0;
  let ratingVersion = data.rating ? data.rating.version : null;
  let spans = [];
  let draftTimer = null;
  let dirty = false;
  let seq = Math.max(Date.now(), (data.draft_seq || 0) + 1);
  let activeSeconds = 0;
  let lastActivity = Date.now();
  let submitting = false;
  // Whether this page may write at all (study open, revisions allowed); a pause pushed over the
  // status socket turns it off until the study reopens.
  const writableOnLoad = data.can_write;
  let writable = data.can_write;

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

  function highlight(index, { scroll = true, initial = false } = {}) {
    const visible = visibleItems();
    if (visible.length === 0) return;
    activeIndex = Math.max(0, Math.min(index, visible.length - 1));
    for (const item of items) item.classList.remove("active");
    const current = visible[activeIndex];
    current.classList.add("active");
    if (scroll) reveal(current, { pageToo: !initial });
  }

  // Bring a question into view inside the questions pane. The page itself scrolls only in the
  // stacked (narrow) layout and only once the reader moves: on opening, the images and the
  // report headings stay at the top.
  function reveal(element, { pageToo }) {
    const pane = element.closest(".questions");
    if (pane && pane.scrollHeight > pane.clientHeight) {
      const box = element.getBoundingClientRect();
      const view = pane.getBoundingClientRect();
      if (box.top < view.top) pane.scrollTop -= view.top - box.top;
      else if (box.bottom > view.bottom) pane.scrollTop += Math.min(box.bottom - view.bottom, box.top - view.top);
    } else if (pageToo) {
      element.scrollIntoView({ block: "nearest" });
    }
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
    if (!dirty || !writable) return;
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
  const activeTimer = setInterval(() => {
    if (document.visibilityState === "visible" && Date.now() - lastActivity < 60000) {
      activeSeconds += 1;
    }
  }, 1000);
  signal.addEventListener("abort", () => {
    clearInterval(activeTimer);
    clearTimeout(draftTimer);
  });
  for (const type of ["pointerdown", "keydown", "wheel"]) {
    document.addEventListener(type, () => { lastActivity = Date.now(); }, { passive: true, signal });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") saveDraft({ keepalive: true });
  }, { signal });
  window.addEventListener("pagehide", () => saveDraft({ keepalive: true }), { signal });

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

  // Marked passages are highlighted in the report text through the CSS Custom Highlight API: the
  // report markup is never changed, so offsets stay those of the rendered text and both reports
  // stay identical apart from the reader's own marks.
  function highlightSpans() {
    if (!window.CSS?.highlights || typeof Highlight === "undefined") return;
    const ranges = [];
    for (const span of spans) {
      const section = document.querySelector(
        `section.report[data-side="${CSS.escape(span.side)}"] .report-text[data-section="${CSS.escape(span.section)}"]`,
      );
      if (!section || span.end > section.textContent.length) continue;
      const range = document.createRange();
      range.setStart(...textPosition(section, span.start));
      range.setEnd(...textPosition(section, span.end));
      ranges.push(range);
    }
    CSS.highlights.set("error-span", new Highlight(...ranges));
  }

  function categoryLabel(side, code) {
    return categoriesFor(side).find((c) => c.code === code)?.label ?? "";
  }

  function renderSpans() {
    highlightSpans();
    for (const list of form.querySelectorAll("[data-spans]")) {
      const side = list.dataset.spans;
      list.replaceChildren();
      spans.forEach((span, index) => {
        if (span.side !== side) return;
        const report = document.querySelector(`section.report[data-side="${CSS.escape(side)}"] .report-text[data-section="${span.section}"]`);
        const quoted = report ? report.textContent.slice(span.start, span.end) : "";
        const row = document.createElement("li");
        row.dataset.span = String(index);
        const quote = document.createElement("q");
        quote.textContent = quoted;
        const reason = document.createElement("span");
        reason.className = "span-reason";
        reason.textContent = categoryLabel(side, span.category) || "no reason chosen yet";
        const category = document.createElement("select");
        category.append(new Option("Reason…", ""));
        for (const c of categoriesFor(side)) category.append(new Option(c.label, c.code));
        category.value = span.category;
        category.setAttribute("aria-label", "Reason");
        category.addEventListener("change", () => {
          span.category = category.value;
          reason.textContent = categoryLabel(side, span.category) || "no reason chosen yet";
          row.classList.remove("invalid");
          row.querySelector(".item-error")?.remove();
          changed();
        });
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
        row.append(quote, reason, category, significantLabel, replacement, remove);
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
    if (item?.dataset.type !== "error_spans" || !writable) return false;
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

  document.addEventListener("pointerdown", () => markEnd({ keepSelection: true }), { signal });

  // --- errors in words, beside what they are about --------------------------------------------

  function errorsClear() {
    formError.textContent = "";
    for (const node of form.querySelectorAll(".item-error")) node.remove();
    for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
  }

  function errorAttach(container, message, before = null) {
    const note = document.createElement("p");
    note.className = "item-error";
    note.setAttribute("role", "alert");
    note.id = `error-${Math.random().toString(36).slice(2)}`;
    note.textContent = message;
    container.classList.add("invalid");
    container.insertBefore(note, before);
    container.setAttribute("aria-describedby", note.id);
    return note;
  }

  // A span's problem in the reader's words: what is missing, named by the passage's text; the
  // server's wording names reasons by their stored codes, which mean nothing to a reader.
  function spanMessage(span, message) {
    if (!span.category) return "Choose a reason for this passage.";
    let text = message;
    for (const c of categoriesFor(span.side)) text = text.replaceAll(c.code, c.label);
    return text;
  }

  /** Show a refused rating's messages beside their questions; returns whether any was placed. */
  function errorsShow(fields) {
    errorsClear();
    let first = null;
    const general = [];
    for (const [key, value] of Object.entries(fields || {})) {
      const message = errorText(Array.isArray(value) ? value : [value]);
      const answer = /^answers\.(.+)$/.exec(key);
      const spanAt = /^spans\.(\d+)$/.exec(key);
      if (answer) {
        const item = form.querySelector(`fieldset.item[data-item="${CSS.escape(answer[1])}"]`);
        if (item && !item.hidden) {
          errorAttach(item, message, item.querySelector("legend")?.nextSibling ?? null);
          first ??= item;
          continue;
        }
      } else if (spanAt && spans[Number(spanAt[1])]) {
        const span = spans[Number(spanAt[1])];
        const row = form.querySelector(`[data-spans="${CSS.escape(span.side)}"] li[data-span="${spanAt[1]}"]`);
        if (row) {
          errorAttach(row, spanMessage(span, message));
          first ??= row;
          continue;
        }
      } else if (key === "spans") {
        const list = form.querySelector("[data-spans]");
        const item = list?.closest("fieldset.item");
        if (item) {
          errorAttach(item, message, list);
          first ??= item;
          continue;
        }
      }
      if (key !== "code") general.push(message);
    }
    formError.textContent = general.join(" ");
    if (first) {
      const item = first.closest("fieldset.item");
      if (item) highlight(visibleItems().indexOf(item));
      // The question itself takes the focus (not one of its options), so the answer keys keep
      // working and a screen reader reads the message it is described by.
      const target = first.matches("li") ? first.querySelector("select") : first;
      if (!target.matches("select")) target.tabIndex = -1;
      target.focus({ preventScroll: false });
    }
    return first !== null || general.length > 0;
  }

  // --- submit ----------------------------------------------------------------------------------

  function keyStorage() {
    return `rating-key:${data.assignment}:${ratingVersion || 0}`;
  }

  async function submit() {
    if (submitting || !writable) return;
    submitting = true;
    submitButton.disabled = true;
    errorsClear();
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
          if (error.status === 400 && error.data && typeof error.data.detail !== "string") {
            errorsShow(error.data);
          } else {
            formError.textContent = error.message;
          }
          setState("Not saved", true);
          submitting = false;
          submitButton.disabled = !writable;
          return;
        }
        setState(`Connection problem, retrying… (${error.message})`, true);
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
      }
    }
    submitting = false;
    submitButton.disabled = !writable;
    if (result === null) {
      formError.textContent = "Could not reach the server. Your draft is kept; press Ctrl+Enter to try again.";
      return;
    }
    sessionStorage.removeItem(keyStorage());
    sessionStorage.removeItem(`${keyStorage()}:payload`);
    dirty = false;
    ratingVersion = result.version;
    setState(`Submitted (version ${result.version})`);
    if (!isRevision && data.practice) {
      // A practice case shows the reader's answers beside the reference before moving on: the
      // same case again, now submitted (the usual next key continues).
      caseGo(window.location.href, { push: false });
    } else if (!isRevision) {
      caseGo(`/studies/reading/${data.study.id}/continue/`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  form.addEventListener("change", (event) => {
    // An answered question's message has done its job.
    const item = event.target.closest?.("fieldset.item");
    if (item?.classList.contains("invalid")) {
      item.classList.remove("invalid");
      item.querySelector(":scope > .item-error")?.remove();
    }
    changed();
  });
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
    saveDraft().finally(() => caseGo(link.href));
  }

  function answerByKey(item, event) {
    const key = event.key.toLowerCase();
    const radios = [...item.querySelectorAll("input[type=radio]")];
    const radio = /^[1-9]$/.test(key)
      ? radios[Number(key) - 1]
      : OPTION_LETTERS.includes(key)
        ? radios.find((r) => r.value === key)
        : null;
    if (!radio) return false;
    event.preventDefault();
    if (!writable) return true;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    highlight(activeIndex + 1);
    return true;
  }

  // Window, capture phase: the form's keys are decided here before anything inside the page
  // (the viewer, or Cornerstone's listeners on its images) can take them.
  window.addEventListener(
    "keydown",
    (event) => {
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
      if (event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) return;
      const key = event.key.toLowerCase();
      const item = currentItem();
      if (item && (OPTION_LETTERS.includes(key) || (/^[1-9]$/.test(key) && !event.shiftKey))) {
        answerByKey(item, event);
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
        event.preventDefault();
        navigate("next");
      } else if (key === "p") {
        event.preventDefault();
        navigate("previous");
      }
    },
    { capture: true, signal },
  );
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(link.dataset.nav);
    });
  }

  // --- study status: a pause reaches the open page at once ---------------------------------------

  function writableSet(open, message) {
    writable = open && writableOnLoad;
    submitButton.disabled = !writable || submitting;
    for (const input of form.querySelectorAll("input, textarea, select, button")) {
      if (input !== submitButton) input.disabled = !writable;
    }
    studyNotice.hidden = !message;
    studyNotice.textContent = message;
  }

  if (writableOnLoad) {
    const socket = reconnectingSocket(form.dataset.statusSocket, (event) => {
      if (event.type === "status") writableSet(event.status === "open", event.message);
    });
    signal.addEventListener("abort", () => socket.close());
  }

  // --- reports: each scrolls in its own pane, together if the reader asks --------------------------

  const panes = [...document.querySelectorAll("[data-report-body]")];
  const syncBox = document.querySelector("[data-sync-scroll]");
  if (syncBox && panes.length === 2) {
    syncBox.closest("label").hidden = false;
    syncBox.checked = localStorage.getItem("reading:sync-scroll") === "1";
    syncBox.addEventListener("change", () => localStorage.setItem("reading:sync-scroll", syncBox.checked ? "1" : "0"));
    // The pane the reader scrolls leads until it has been still for a moment: the other pane's
    // own scroll events (caused by following) never steer back.
    let leader = null;
    let leaderTimer = null;
    for (const pane of panes) {
      pane.addEventListener("scroll", () => {
        if (!syncBox.checked || (leader && leader !== pane)) return;
        leader = pane;
        clearTimeout(leaderTimer);
        leaderTimer = setTimeout(() => { leader = null; }, 150);
        const other = panes.find((p) => p !== pane);
        const room = pane.scrollHeight - pane.clientHeight;
        const fraction = room > 0 ? pane.scrollTop / room : 0;
        other.scrollTop = Math.round(fraction * (other.scrollHeight - other.clientHeight));
      });
    }
  }

  // --- start -----------------------------------------------------------------------------------

  if (data.draft && Object.keys(data.draft).length > 0) {
    restore(data.draft.answers, data.draft.spans);
    setState(data.rating ? `Unsaved revision restored (submitted version ${data.rating.version})` : "Draft restored");
  } else if (data.rating) {
    restore(data.rating.answers, data.rating.spans);
  } else {
    applyConditions();
  }
  if (!writable) {
    for (const input of form.querySelectorAll("input, textarea, select, button")) input.disabled = true;
  }
  document.querySelector("[data-practice-feedback]")?.focus({ preventScroll: true });
  const firstOpen = visibleItems().findIndex((item) => !item.querySelector("input:checked") && !(item.querySelector("textarea") || {}).value);
  highlight(Math.max(firstOpen, 0), { initial: true });
}

// --- moving between cases without reloading the page ---------------------------------------------

// The next case replaces this one in the page, and the viewer (with its engine, already
// evaluated) stays: moving on costs the case's own images, not the engine again. Every case
// keeps its URL (history, reload and links work as before); anything that is not a reading
// page (the end of the list, a login, an error) is opened as a page of its own.
let current = new AbortController();
let moves = 0; // the latest move wins when the reader presses n twice
const REPLACED = [".reading-bar", "[data-study-notice]", ".reading-side"];

async function caseGo(url, { push = true } = {}) {
  const move = ++moves;
  let response;
  let next;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    next = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    window.location.assign(url);
    return;
  }
  if (move !== moves) return;
  performance.mark("reading:case-fetched"); // for the viewer benchmark's next-case figures
  const viewer = document.querySelector("[data-viewer]");
  const nextViewer = next.querySelector("[data-viewer]");
  const parts = REPLACED.map((selector) => [document.querySelector(selector), next.querySelector(selector)]);
  const nextData = next.getElementById("case-data");
  if (!response.ok || !viewer || !nextViewer || !nextData || parts.some(([here, there]) => !here || !there)) {
    // Asked again as a page: what it says once (the end of the list) is said to the reader.
    window.location.assign(url);
    return;
  }
  current.abort();
  current = new AbortController();
  document.title = next.title;
  for (const [here, there] of parts) here.replaceWith(document.adoptNode(there));
  document.getElementById("case-data").replaceWith(document.adoptNode(nextData));
  if (push) history.pushState({ readingCase: true }, "", response.url);
  if (nextViewer.dataset.nextStudyUid) viewer.dataset.nextStudyUid = nextViewer.dataset.nextStudyUid;
  else delete viewer.dataset.nextStudyUid;
  if (viewer.dataset.studyUid !== nextViewer.dataset.studyUid) {
    viewer.dataset.studyUid = nextViewer.dataset.studyUid;
    viewer.dispatchEvent(new CustomEvent("viewer:study", { bubbles: true }));
  }
  caseStart(current.signal);
}

window.addEventListener("popstate", () => caseGo(window.location.href, { push: false }));
caseStart(current.signal);
