// Analysis page: sort any results table by a column, say that a recompute is running, and
// for a large study follow the background computation of agreement CIs and plots, then fill
// them in without reloading the page (the headline above stays where the analyst is reading).
import { apiFetch, readJsonScript } from "../lib/http.js";

const data = readJsonScript("analysis-data");
// Polling, not the websocket: without Redis (the embedded demo) events do not cross processes,
// and a status answer is cheap (served from the cache).
const POLL_MS = 1000;

function cellValue(row, index) {
  const text = row.cells[index]?.textContent.trim() ?? "";
  const number = Number.parseFloat(text.replace("%", ""));
  return Number.isNaN(number) ? text.toLowerCase() : number;
}

function sortable(root) {
  for (const table of root.querySelectorAll("table.table")) {
    const headers = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
    headers.forEach((header, index) => {
      header.tabIndex = 0;
      header.title = "Sort by this column";
      let ascending = true;
      const sort = () => {
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = cellValue(a, index);
          const y = cellValue(b, index);
          if (x === y) return 0;
          return (x < y ? -1 : 1) * (ascending ? 1 : -1);
        });
        ascending = !ascending;
        body.append(...rows);
      };
      header.addEventListener("click", sort);
      header.addEventListener("keydown", (event) => {
        if (event.key === "Enter") sort();
      });
    });
  }
}

sortable(document);

const form = document.getElementById("bootstrap-form");
if (form && data) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = `Recomputing (was ${data.bootstrap.n_resamples} resamples, seed ${data.bootstrap.seed})…`;
  });
}

function showProgress(status) {
  const bar = document.getElementById("analysis-progress");
  const text = document.getElementById("analysis-progress-text");
  if (!bar || !text) return;
  bar.max = Math.max(status.total, 1);
  bar.value = status.done;
  text.textContent =
    status.state === "queued" ? "waiting for a worker" : `${status.done} of ${status.total} steps`;
}

// The complete page, from the cache now: swap in the parts that were computing.
async function fillIn() {
  const response = await fetch(window.location.href, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["plots-part", "agreement-part"]) {
    const current = document.getElementById(id);
    const replacement = fresh.getElementById(id);
    if (current && replacement) {
      current.replaceWith(replacement);
      sortable(replacement);
    }
  }
  document.body.dataset.analysisComplete = "true";
}

async function follow() {
  let answer;
  try {
    answer = await apiFetch(data.poll);
  } catch (error) {
    const text = document.getElementById("analysis-progress-text");
    if (text) text.textContent = error.status === 503 ? error.message : `Could not refresh: ${error.message}; retrying…`;
    if (error.status !== 503) setTimeout(follow, POLL_MS * 4);
    return;
  }
  if (answer.status.key !== data.status.key) {
    // A rating arrived since the page was drawn: its headline is out of date too.
    window.location.reload();
    return;
  }
  showProgress(answer.status);
  if (answer.status.state === "complete") {
    await fillIn();
  } else {
    setTimeout(follow, POLL_MS);
  }
}

if (data && data.status.state === "complete") {
  document.body.dataset.analysisComplete = "true";
} else if (data && data.status.state !== "failed") {
  setTimeout(follow, POLL_MS);
}
