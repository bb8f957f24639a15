// Live progress of one generation job: websocket events when they come, a slow poll of the
// API as a fallback (the embedded demo's channel layer cannot reach across processes).
import { apiFetch, readJsonScript } from "../lib/http.js";
import { reconnectingSocket } from "../lib/socket.js";

const data = readJsonScript("generation-job-data");
const bar = document.getElementById("job-progress");
const text = document.getElementById("job-progress-text");
const live = document.getElementById("job-live");

function showCounts(counts) {
  bar.max = Math.max(counts.total, 1);
  bar.value = counts.finished;
  bar.textContent = `${Math.round((100 * counts.finished) / Math.max(counts.total, 1))}%`;
  text.textContent =
    `${counts.finished} / ${counts.total} finished · ${counts.succeeded} succeeded · ` +
    `${counts.failed} failed · ${counts.running} running`;
  document.body.dataset.jobFinished = String(counts.finished >= counts.total);
}

function showRun(run) {
  const row = document.querySelector(`tr[data-run="${run.run || run.id}"]`);
  if (!row) return;
  row.querySelector(".run-status").textContent = run.status;
  row.querySelector(".run-attempts").textContent = `${run.attempts} / ${run.max_attempts}`;
  row.querySelector(".run-error").textContent = run.error || "";
  const report = row.querySelector(".run-report");
  if (report) report.hidden = !run.report;
  const retry = row.querySelector(".run-retry");
  if (retry) retry.hidden = !(run.status === "failed" || run.status === "cancelled");
}

function apply(message) {
  if (message.counts) showCounts(message.counts);
  for (const run of message.runs || []) showRun(run);
}

async function poll() {
  try {
    apply(await apiFetch(data.api));
  } catch (error) {
    live.textContent = `Could not refresh: ${error.message}`;
  }
}

if (data.live) {
  reconnectingSocket(data.socket, apply, {
    onStatus: (state) => {
      live.textContent = state === "open" ? "live" : "reconnecting…";
    },
  });
}
setInterval(() => {
  if (document.body.dataset.jobFinished !== "true") poll();
}, 4000);
