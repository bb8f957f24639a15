// The "Invite readers" page: Copy puts a new one-time link on the clipboard (the page shows
// links only where no mail server sends them). Confirmation of Revoke comes from common.js.
import "./common.js";

for (const button of document.querySelectorAll("[data-copy-link]")) {
  const field = document.getElementById(button.dataset.copyLink);
  const state = document.querySelector(`[data-copy-state="${button.dataset.copyLink}"]`);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      state.textContent = "Copied.";
    } catch {
      // Without clipboard access (plain http, a refused permission) the link is selected.
      field.select();
      state.textContent = "Selected: press Ctrl+C to copy.";
    }
  });
}
