// The viewer's keyboard and mouse bindings on the page (Cornerstone's tools take the drags on
// the images themselves: tiles.js). Returns the function that removes them.
import { actionFor } from "./keymap.js";
import { actionRun, seriesShow } from "./actions.js";
import { isEditable } from "./dom.js";

export function inputBind(v) {
  const { element, shared } = v;
  const { toolbar, seriesSelect } = v.ui;
  // Standalone, keys belong to the viewer while it has the focus (a click on an image gives
  // it). Shared with the reading form, the viewer's keys are the ones the form does not use
  // (actionFor never returns one of those), and they act wherever the focus is not in a form
  // control or text box, where arrows, Space and letters keep their usual meaning.
  function viewerOwnsKey() {
    const focused = document.activeElement;
    if (shared && (!focused || focused === document.body)) return true;
    return element.contains(focused) && (!isEditable(focused) || focused === element);
  }
  const onKeyDown = (event) => {
    if (event.defaultPrevented || !viewerOwnsKey()) return;
    const action = actionFor(event, v.keys, { shared });
    if (action && actionRun(v, action)) event.preventDefault();
  };
  const onPointerDown = (event) => {
    if (event.target.closest?.(".viewer-tiles")) element.focus({ preventScroll: true });
  };
  // A middle press must not start the browser's autoscroll. Cancelled on mousedown, not on
  // pointerdown: that would suppress the mouse events Cornerstone's pan tool listens to.
  const onMouseDown = (event) => {
    if (event.button === 1 && event.target.closest?.(".viewer-tiles")) event.preventDefault();
  };
  const onContextMenu = (event) => {
    if (event.target.closest?.(".viewer-tiles")) event.preventDefault();
  };
  const onToolbarClick = (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.preset) actionRun(v, `preset:${button.dataset.preset}`);
    else if (button.dataset.action) actionRun(v, button.dataset.action);
    // Focus left on the button would make Space press it again instead of resetting.
    element.focus({ preventScroll: true });
  };
  const onSeriesChange = () => seriesShow(v, Number(seriesSelect.value));

  // Capture phase: Cornerstone's own key listeners on the viewport cancel every key event.
  document.addEventListener("keydown", onKeyDown, true);
  element.addEventListener("pointerdown", onPointerDown);
  element.addEventListener("mousedown", onMouseDown);
  element.addEventListener("contextmenu", onContextMenu);
  toolbar.addEventListener("click", onToolbarClick);
  seriesSelect.addEventListener("change", onSeriesChange);
  return () => {
    document.removeEventListener("keydown", onKeyDown, true);
    element.removeEventListener("pointerdown", onPointerDown);
    element.removeEventListener("mousedown", onMouseDown);
    element.removeEventListener("contextmenu", onContextMenu);
    toolbar.removeEventListener("click", onToolbarClick);
    seriesSelect.removeEventListener("change", onSeriesChange);
  };
}
