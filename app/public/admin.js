// The changelist's "select all" box, "N of M selected" counter and "Select all N posts" across
// pages, as Django's actions.js. An external file because the Content-Security-Policy allows no
// inline script.
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
  for (const box of boxes) box.addEventListener("change", update);
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
});
