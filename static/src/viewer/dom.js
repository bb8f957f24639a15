// Small DOM helpers of the viewer (no Cornerstone).

/** An element with attributes ("text": its text, "dataset": data-* values) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, val] of Object.entries(attrs)) {
    if (name === "text") node.textContent = val;
    else if (name === "dataset") Object.assign(node.dataset, val);
    else node.setAttribute(name, val);
  }
  for (const child of children) node.append(child);
  return node;
}

/** A control where keys keep their usual meaning (typing, choosing, pressing). */
export function isEditable(node) {
  if (!node || node === document.body) return false;
  return node.isContentEditable || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(node.tagName);
}
