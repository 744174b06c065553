// The changelist's "select all" box and "N of M selected" counter, as Django's actions.js.
// An external file because the Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("action-toggle");
  const counter = document.querySelector(".action-counter");
  const boxes = Array.from(document.querySelectorAll("input.action-select"));
  if (!toggle || !counter) return;
  const update = () => {
    const selected = boxes.filter((box) => box.checked).length;
    counter.textContent = `${selected} of ${boxes.length} selected`;
    toggle.checked = selected > 0 && selected === boxes.length;
  };
  toggle.addEventListener("change", () => {
    for (const box of boxes) box.checked = toggle.checked;
    update();
  });
  for (const box of boxes) box.addEventListener("change", update);
});
