// Live progress of a study's metric jobs: websocket events when they come, a slow poll of the
// API as a fallback (the embedded demo's channel layer cannot reach across processes). When
// every job the page was opened with has finished, the page reloads to show the results.
import { apiFetch, readJsonScript } from "../lib/http.js";
import { reconnectingSocket } from "../lib/socket.js";

const data = readJsonScript("metrics-data");
const live = document.getElementById("metrics-live");
const waiting = new Set(data.jobs);

function showJob(job) {
  const row = document.querySelector(`tr[data-job="${job.job}"]`);
  if (row) {
    row.querySelector(".job-status").textContent = job.status;
    const bar = row.querySelector(".job-progress");
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    row.querySelector(".job-counts").textContent = `${job.done} / ${job.total}`;
    row.querySelector(".job-error").textContent = job.error || "";
  }
  if (job.finished && waiting.delete(job.job) && waiting.size === 0) {
    window.location.reload();
  }
}

function apply(message) {
  if (message.job) showJob(message);
  for (const job of message.jobs || []) showJob(job);
}

if (waiting.size === 0) {
  document.body.dataset.metricsIdle = "true";
} else {
  reconnectingSocket(data.socket, apply, {
    onStatus: (state) => {
      live.textContent = state === "open" ? "live" : "reconnecting…";
    },
  });
  setInterval(async () => {
    if (waiting.size === 0) return;
    try {
      apply(await apiFetch(data.api));
    } catch (error) {
      live.textContent = `Could not refresh: ${error.message}`;
    }
  }, 4000);
}
