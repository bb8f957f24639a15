// Behaviour shared by every server-rendered page: confirmation for destructive buttons.
for (const element of document.querySelectorAll("[data-confirm]")) {
  element.addEventListener("click", (event) => {
    if (!window.confirm(element.dataset.confirm)) event.preventDefault();
  });
}
