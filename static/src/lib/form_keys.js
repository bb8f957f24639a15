// The reading form's keys: the one list the reading page acts on, the help panel shows and the
// viewer leaves alone. On the reading page these keys always reach the form, wherever the focus
// is (the image included), except while the reader types in a text box.
export const OPTION_LETTERS = "abcdefg";

export const FORM_KEYS = [
  { keys: ["a", "…", "g"], label: "Choose that option of the highlighted question, then move on" },
  { keys: ["1", "…", "9"], label: "Choose the option in that place (1 is the first)" },
  { keys: ["j", "k"], label: "Next / previous question" },
  { keys: ["t"], label: "Type in the highlighted text box (Esc leaves it)" },
  {
    keys: ["m"],
    label:
      "On an error-marking question: mark a passage of its report (←/→ word, ↑/↓ sentence, " +
      "Shift extends, Enter marks, Esc cancels; then Tab through reason, clinically " +
      "significant and replacement text)",
  },
  { keys: ["Ctrl+Enter"], label: "Submit (the next case opens)" },
  { keys: ["n", "p"], label: "Next / previous case (your draft is kept)" },
];

const LETTERS = new Set([...OPTION_LETTERS, "j", "k", "t", "m", "n", "p"]);

/** Whether the reading form owns this key press (the viewer must then leave it alone). */
export function isFormKey(event) {
  if (event.altKey || event.metaKey) return false;
  if (event.ctrlKey) return event.key === "Enter";
  if (event.key.length !== 1) return false;
  // Shift+digit is the viewer's (window presets), on any keyboard layout.
  return LETTERS.has(event.key.toLowerCase()) || (!event.shiftKey && event.key >= "0" && event.key <= "9");
}
