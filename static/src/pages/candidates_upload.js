// Candidate reports upload: refuse an oversized file before sending it, show how much of the
// file has been sent (prediction files run to tens of MB), then show the server's result in
// place. Without JavaScript the form posts normally and the server renders the same result.
const form = document.getElementById("candidates-form");
const input = document.getElementById("candidates-file");
const button = document.getElementById("candidates-button");
const progress = document.getElementById("candidates-progress");
const MAX_BYTES = Number(form.dataset.maxBytes);

function showResult(html) {
  const page = new DOMParser().parseFromString(html, "text/html");
  for (const id of ["candidates-result", "candidates-error"]) {
    document.getElementById(id)?.remove();
    const fresh = page.getElementById(id);
    if (fresh && id === "candidates-result") form.closest("section").after(fresh);
    if (fresh && id === "candidates-error") form.before(fresh);
  }
}

form.addEventListener("submit", (event) => {
  const file = input.files[0];
  if (file && file.size > MAX_BYTES) {
    event.preventDefault();
    input.setCustomValidity(`This file is larger than ${Math.round(MAX_BYTES / 1048576)} MB.`);
    input.reportValidity();
    return;
  }
  event.preventDefault();
  button.disabled = true;
  button.textContent = "Uploading…";
  progress.hidden = false;
  progress.value = 0;
  const request = new XMLHttpRequest();
  request.open("POST", form.action || window.location.href);
  request.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
  });
  request.upload.addEventListener("load", () => {
    // The bytes are sent; matching and storing happens on the server now.
    progress.removeAttribute("value");
    button.textContent = "Importing…";
  });
  const finish = () => {
    button.disabled = false;
    button.textContent = "Import";
    progress.hidden = true;
  };
  request.addEventListener("load", () => {
    finish();
    showResult(request.responseText);
  });
  request.addEventListener("error", () => {
    finish();
    showResult(
      '<p class="error" role="alert" id="candidates-error">The upload failed; check the connection and try again.</p>',
    );
  });
  request.send(new FormData(form));
});
input.addEventListener("change", () => input.setCustomValidity(""));
