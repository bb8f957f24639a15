// DICOM upload: files, a folder or a .zip (picked or dropped) go up in one XHR so the
// progress bar can follow the bytes; then the batch page follows the import itself.
import { csrfToken } from "../lib/http.js";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file-input");
const folderInput = document.getElementById("folder-input");
const dropZone = document.getElementById("drop-zone");
const summary = document.getElementById("selection-summary");
const progress = document.getElementById("upload-progress");
const statusLine = document.getElementById("upload-status");
const button = document.getElementById("upload-button");
const limitBytes = Number(form.dataset.limitBytes);

// Each entry: { file, path } where path is what the person knows the file by.
let dropped = [];

function formatSize(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function selectedEntries() {
  const entries = [...dropped];
  for (const file of fileInput.files) entries.push({ file, path: file.name });
  for (const file of folderInput.files) {
    entries.push({ file, path: file.webkitRelativePath || file.name });
  }
  return entries;
}

function showSelection() {
  const entries = selectedEntries();
  const total = entries.reduce((sum, entry) => sum + entry.file.size, 0);
  summary.textContent = entries.length
    ? `${entries.length} file${entries.length === 1 ? "" : "s"} selected (${formatSize(total)})`
    : "";
  if (total > limitBytes) {
    statusLine.className = "error";
    statusLine.textContent = `This is more than the ${formatSize(limitBytes)} allowed per upload: upload it in smaller parts.`;
  } else {
    statusLine.className = "";
    statusLine.textContent = "";
  }
}

// Dropped folders are walked through the entries API; the browser gives no FileList for them.
async function readEntry(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + file.name });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await readEntry(child, `${prefix}${entry.name}/`, out);
  }
}

dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("active");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("active"));
dropZone.addEventListener("drop", async (event) => {
  event.preventDefault();
  dropZone.classList.remove("active");
  const items = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.());
  const out = [];
  if (items.length && items.every(Boolean)) {
    for (const entry of items) await readEntry(entry, "", out);
  } else {
    for (const file of event.dataTransfer.files) out.push({ file, path: file.name });
  }
  dropped = dropped.concat(out);
  showSelection();
});
fileInput.addEventListener("change", showSelection);
folderInput.addEventListener("change", showSelection);

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const entries = selectedEntries();
  if (!entries.length) {
    statusLine.className = "error";
    statusLine.textContent = "Choose at least one file, folder or .zip to import.";
    return;
  }
  const total = entries.reduce((sum, entry) => sum + entry.file.size, 0);
  if (total > limitBytes) {
    showSelection();
    return;
  }
  const body = new FormData();
  for (const entry of entries) {
    body.append("files", entry.file, entry.file.name);
    body.append("paths", entry.path);
  }
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.apiUrl);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.responseType = "json";
  progress.hidden = false;
  progress.value = 0;
  button.disabled = true;
  statusLine.className = "";
  statusLine.textContent = "Uploading…";
  xhr.upload.addEventListener("progress", (progressEvent) => {
    if (progressEvent.lengthComputable) {
      progress.value = Math.round((progressEvent.loaded / progressEvent.total) * 100);
      statusLine.textContent = `Uploading… ${progress.value}%`;
    }
  });
  xhr.addEventListener("load", () => {
    if (xhr.status === 202 && xhr.response?.page_url) {
      progress.value = 100;
      statusLine.textContent = "Uploaded: 100%. Importing…";
      window.location.assign(xhr.response.page_url);
      return;
    }
    button.disabled = false;
    statusLine.className = "error";
    statusLine.textContent = xhr.response?.detail || `The upload failed (${xhr.status}).`;
  });
  xhr.addEventListener("error", () => {
    button.disabled = false;
    statusLine.className = "error";
    statusLine.textContent = "The upload was interrupted: check the connection and try again.";
  });
  xhr.send(body);
});
