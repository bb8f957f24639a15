// Standalone study viewer (and any page with a [data-viewer] slot that loads this entry).
import { mountViewer } from "../viewer/index.js";

for (const element of document.querySelectorAll("[data-viewer]")) mountViewer(element);
