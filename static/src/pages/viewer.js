// Standalone study viewer (and any page with a [data-viewer] slot that loads this entry).
import { mountViewer } from "../viewer/index.js";

for (const element of document.querySelectorAll("[data-viewer]")) mountViewer(element);

// The reading page moves to the next case in place (pages/reading.js): the slot names another
// study and the viewer opens it, reusing the engine the page has already evaluated.
document.addEventListener("viewer:study", (event) => {
  const element = event.target.closest?.("[data-viewer]");
  if (!element) return;
  element.viewerHandle?.destroy();
  mountViewer(element);
});
