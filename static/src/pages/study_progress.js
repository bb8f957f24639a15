// Live progress of one reader study: the table and the reminders update over the websocket
// as ratings arrive. Every figure and text comes from the server's progress selector.
import { readJsonScript } from "../lib/http.js";
import { reconnectingSocket } from "../lib/socket.js";

const initial = readJsonScript("progress-data");
const rows = document.querySelector("[data-progress-rows]");
const live = document.querySelector("[data-live-state]");
const reminders = document.querySelector("[data-progress-reminders]");
const copyState = document.querySelector("[data-copy-state]");

function cell(text, column) {
  const td = document.createElement("td");
  td.textContent = text;
  if (column) td.dataset.col = column;
  return td;
}

function render(progress) {
  document.querySelector("[data-progress-status]").textContent = progress.status;
  document.querySelector("[data-progress-overall]").textContent = `${progress.submitted} / ${progress.total}`;
  document.querySelector("[data-progress-revisions]").textContent = progress.revisions;
  const practice = document.querySelector("[data-progress-practice]");
  if (practice) practice.textContent = `${progress.practice_submitted} / ${progress.practice_total}`;
  document.querySelector("[data-progress-median]").textContent = progress.median_text || "not known yet";
  reminders.value = progress.reminders;
  rows.replaceChildren(
    ...progress.readers.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.reader = row.reader;
      const bar = document.createElement("progress");
      bar.max = row.total;
      bar.value = row.submitted;
      const barCell = document.createElement("td");
      barCell.append(bar);
      tr.append(
        cell(row.reader),
        cell(row.cohort),
        cell(row.status_text, "status"),
        cell(`${row.submitted} / ${row.total}`, "submitted"),
        cell(String(row.in_progress), "in_progress"),
        ...(practice ? [cell(`${row.practice_submitted} / ${row.practice_total}`, "practice")] : []),
        cell(row.last_activity_text || "none yet", "last_activity"),
        cell(row.median_text, "median"),
        cell(row.estimate_text + (row.estimate_basis === "study" ? " (study's pace)" : ""), "estimate"),
        cell(row.finish_text, "finish"),
        barCell,
      );
      return tr;
    }),
  );
}

reconnectingSocket(
  `/ws/studies/${initial.study}/progress/`,
  (message) => {
    if (message.type === "progress") render(message.progress);
  },
  { onStatus: (state) => { live.textContent = state === "open" ? "live" : "reconnecting…"; live.dataset.state = state; } },
);

document.querySelector("[data-copy-reminders]").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(reminders.value);
    copyState.textContent = "Copied.";
  } catch {
    // Without clipboard access (plain http, a refused permission) the text is selected instead.
    reminders.select();
    copyState.textContent = "Selected: press Ctrl+C to copy.";
  }
});
