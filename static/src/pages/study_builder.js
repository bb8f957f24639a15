// New-study form: show the options that apply to the chosen protocol template only.
const form = document.querySelector("[data-study-builder]");
const pairwiseOnly = form.querySelector("[data-pairwise-only]");
const thresholdOnly = form.querySelector("[data-threshold-only]");

function update() {
  const chosen = form.querySelector("input[name=protocol_key]:checked");
  const pairwise = chosen && chosen.dataset.mode === "pairwise";
  pairwiseOnly.hidden = !pairwise;
  if (!pairwise) pairwiseOnly.querySelector("input").checked = false;
  thresholdOnly.hidden = !(chosen && chosen.value === "ct_acceptability");
  if (thresholdOnly.hidden) thresholdOnly.querySelector("select").value = "";
}

form.addEventListener("change", update);
update();
