// Import batch page: follow the worker's progress by polling the batch API until it ends.
import { apiFetch } from "../lib/http.js";

const root = document.getElementById("batch");
const progress = document.getElementById("batch-progress");
const problemsBody = document.querySelector("#problems tbody");
const FINISHED = new Set(["done", "failed"]);
const STATUS_TEXT = { pending: "Pending", running: "Running", done: "Done", failed: "Failed" };
const KIND_TEXT = { rejected: "Rejected", quarantined: "Quarantined" };

function setText(id, value) {
  document.getElementById(id).textContent = String(value);
}

function render(batch) {
  setText("batch-status", STATUS_TEXT[batch.status] || batch.status);
  setText("batch-error", batch.error_message || "");
  setText("files-done", batch.files_done);
  setText("files-total", batch.files_total);
  setText("imported-count", batch.imported_count);
  setText("duplicate-count", batch.duplicate_count);
  setText("quarantined-count", batch.quarantined_count);
  setText("failed-count", batch.failed_count);
  progress.max = Math.max(batch.files_total, 1);
  progress.value = FINISHED.has(batch.status) ? progress.max : batch.files_done;
  problemsBody.replaceChildren();
  if (!batch.problems.length) {
    const row = problemsBody.insertRow();
    row.className = "none";
    const cell = row.insertCell();
    cell.colSpan = 3;
    cell.textContent = "None.";
  }
  for (const problem of batch.problems) {
    const row = problemsBody.insertRow();
    row.insertCell().textContent = problem.file_name;
    row.insertCell().textContent = KIND_TEXT[problem.kind] || problem.kind;
    row.insertCell().textContent = problem.reason;
  }
  root.dataset.status = batch.status;
}

async function poll(delay) {
  try {
    const batch = await apiFetch(root.dataset.apiUrl);
    render(batch);
    if (FINISHED.has(batch.status)) return;
    setTimeout(() => poll(1000), delay);
  } catch (error) {
    setText("batch-error", `Progress unavailable (${error.message}); retrying…`);
    setTimeout(() => poll(Math.min(delay * 2, 10000)), delay);
  }
}

poll(1000);
