// Reports CSV upload: refuse an oversized file before sending it, and show that a submitted
// import is running (a large CSV takes a moment) instead of letting it be sent twice.
const form = document.getElementById("reports-form");
const input = document.getElementById("reports-file");
const button = document.getElementById("reports-button");
const MAX_BYTES = Number(form.dataset.maxBytes);

form.addEventListener("submit", (event) => {
  const file = input.files[0];
  if (file && file.size > MAX_BYTES) {
    event.preventDefault();
    input.setCustomValidity(`This file is larger than ${Math.round(MAX_BYTES / 1048576)} MB.`);
    input.reportValidity();
    return;
  }
  button.disabled = true;
  button.textContent = "Importing…";
});
input.addEventListener("change", () => input.setCustomValidity(""));
