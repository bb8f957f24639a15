// Live progress of one reader study: the table updates over the websocket as ratings arrive.
import { readJsonScript } from "../lib/http.js";
import { reconnectingSocket } from "../lib/socket.js";

const initial = readJsonScript("progress-data");
const rows = document.querySelector("[data-progress-rows]");
const live = document.querySelector("[data-live-state]");

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
        cell(`${row.submitted} / ${row.total}`, "submitted"),
        cell(String(row.in_progress), "in_progress"),
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
