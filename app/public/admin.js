// The changelist's "select all" box, "N of M selected" counter, shift-click to tick or clear a range
// of boxes and "Select all N posts" across pages, as Django's actions.js. An external file because
// the Content-Security-Policy allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const toggle = document.getElementById("action-toggle");
  const counter = document.querySelector(".action-counter");
  const boxes = Array.from(document.querySelectorAll("input.action-select"));
  if (!toggle || !counter) return;
  const across = document.querySelector("input.select-across");
  const [all, question, clear] = [".all", ".question", ".clear"].map((s) =>
    document.querySelector(`.actions ${s}`),
  );
  const show = (...parts) => parts.forEach((part) => part?.classList.remove("hidden"));
  const hide = (...parts) => parts.forEach((part) => part?.classList.add("hidden"));
  const clearAcross = () => {
    hide(all, question, clear);
    show(counter);
    if (across) across.value = "0";
  };
  const update = () => {
    // Django's tr.selected: a ticked row is highlighted
    for (const box of boxes) box.closest("tr")?.classList.toggle("selected", box.checked);
    const selected = boxes.filter((box) => box.checked).length;
    counter.textContent = `${selected} of ${boxes.length} selected`;
    toggle.checked = selected > 0 && selected === boxes.length;
    clearAcross();
    if (toggle.checked) show(question);
  };
  toggle.addEventListener("change", () => {
    for (const box of boxes) box.checked = toggle.checked;
    update();
  });
  // A click (also the space bar's) has already toggled the box; with Shift, every box between the
  // last one clicked and this one takes its state.
  let lastClicked;
  for (const box of boxes) {
    box.addEventListener("click", (event) => {
      if (event.shiftKey && lastClicked && lastClicked !== box) {
        const [from, to] = [boxes.indexOf(lastClicked), boxes.indexOf(box)].sort((a, b) => a - b);
        for (const other of boxes.slice(from, to + 1)) other.checked = box.checked;
      }
      lastClicked = box;
      update();
    });
  }
  question?.querySelector("a").addEventListener("click", (event) => {
    event.preventDefault();
    across.value = "1";
    hide(question, counter);
    show(all, clear);
  });
  clear?.querySelector("a").addEventListener("click", (event) => {
    event.preventDefault();
    for (const box of boxes) box.checked = false;
    update();
  });
  // Going back to the page, the browser ticks again the boxes it had, once the page has loaded.
  window.addEventListener("pageshow", update);
});
