// Analysis page: sort any results table by a column, and say that a recompute is running
// (2,000+ bootstrap resamples of a large study take a few seconds).
import { readJsonScript } from "../lib/http.js";

const data = readJsonScript("analysis-data");

function cellValue(row, index) {
  const text = row.cells[index]?.textContent.trim() ?? "";
  const number = Number.parseFloat(text.replace("%", ""));
  return Number.isNaN(number) ? text.toLowerCase() : number;
}

for (const table of document.querySelectorAll("table.table")) {
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

const form = document.getElementById("bootstrap-form");
if (form && data) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = `Recomputing (was ${data.bootstrap.n_resamples} resamples, seed ${data.bootstrap.seed})…`;
  });
}
