// Behaviour shared by every server-rendered page: confirmation for destructive buttons, and
// focus on the problem a refused form was sent back with (so it is read out and in view).
for (const element of document.querySelectorAll("[data-confirm]")) {
  element.addEventListener("click", (event) => {
    if (!window.confirm(element.dataset.confirm)) event.preventDefault();
  });
}

const problem = document.querySelector("[data-focus-on-load]");
if (problem) {
  problem.focus();
  problem.scrollIntoView({ block: "center" });
}

// Enter in a field presses its own step's button, not the first button of the form (the
// readers and reading-lists steps share one form so that no tick is lost between them).
for (const area of document.querySelectorAll("[data-enter-submits]")) {
  area.addEventListener("keydown", (event) => {
    const field = event.target;
    if (event.key !== "Enter" || field.tagName !== "INPUT") return;
    if (field.type === "checkbox" || field.type === "radio") return;
    const button = area.querySelector("[data-default]");
    if (!button) return;
    event.preventDefault();
    button.click();
  });
}
