// Keyboard selection of a passage in a report's text, by word and by sentence, as character
// offsets into the text (the same offsets a mouse selection gives). Pure functions over
// {start, end} ranges so the reading page only has to draw the result.
//
// Plain moves select one unit: from a single word, ←/→ go to the previous/next word; from a
// longer selection they enter it at its first/last word (↑/↓ likewise with sentences). Shift
// moves keep the anchor (the unit last selected by a plain move) and move the other end.

function trimmed(text, start, end) {
  while (start < end && /\s/.test(text[start])) start += 1;
  while (end > start && /\s/.test(text[end - 1])) end -= 1;
  return { start, end };
}

// Intl.Segmenter knows abbreviations and decimals ("1.5 cm") better than a regular expression.
function segments(text, granularity) {
  const segmenter = new Intl.Segmenter("en", { granularity });
  const out = [];
  for (const part of segmenter.segment(text)) {
    if (granularity === "word" && !part.isWordLike) continue;
    const unit = trimmed(text, part.index, part.index + part.segment.length);
    if (unit.end > unit.start) out.push(unit);
  }
  return out;
}

export function passageUnits(text) {
  return { words: segments(text, "word"), sentences: segments(text, "sentence") };
}

const same = (a, b) => a.start === b.start && a.end === b.end;

export function selectionOf(state) {
  return {
    start: Math.min(state.anchor.start, state.focus.start),
    end: Math.max(state.anchor.end, state.focus.end),
  };
}

// One plain move within a section; null when it would leave the section (the caller then moves
// to the neighbouring section).
export function movePlain(units, selection, { unit, forward }) {
  const list = units[unit];
  const isOne = list.some((u) => same(u, selection));
  if (forward) {
    return isOne
      ? list.find((u) => u.start >= selection.end) ?? null
      : list.find((u) => u.end > selection.start) ?? null;
  }
  return isOne
    ? list.findLast((u) => u.end <= selection.start) ?? null
    : list.findLast((u) => u.start < selection.end) ?? null;
}

// One Shift move: a new focus unit, or the old one where the section ends.
export function moveFocus(units, focus, { unit, forward }) {
  const list = units[unit];
  const found = forward
    ? list.find((u) => u.end > focus.end)
    : list.findLast((u) => u.start < focus.start);
  return found ?? focus;
}
