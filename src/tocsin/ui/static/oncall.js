// The levels editor (policies/detail.html), progressively enhanced: Move up / Move down
// buttons reorder the rows and renumber their Order fields and labels. Without scripts, the Order
// numbers do the same job when the form is saved.
(function () {
  "use strict";
  var list = document.querySelector("[data-levels-editor]");
  if (!list) return;

  function renumber() {
    var rows = list.querySelectorAll(".level-row");
    rows.forEach(function (row, index) {
      var order = row.querySelector("input[name$='_order']");
      if (order) order.value = String(index + 1);
      var label = row.querySelector("[data-level-label]");
      if (label) label.textContent = "Level " + (index + 1) + " pages";
    });
  }

  list.querySelectorAll(".level-row").forEach(function (row) {
    var slot = row.querySelector(".move");
    if (!slot) return;
    [["up", "Move up", "↑"], ["down", "Move down", "↓"]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-small";
      button.setAttribute("aria-label", spec[1] + " (" + (row.dataset.name || "level") + ")");
      button.textContent = spec[2];
      button.addEventListener("click", function () {
        var other = spec[0] === "up" ? row.previousElementSibling : row.nextElementSibling;
        if (!other) return;
        if (spec[0] === "up") list.insertBefore(row, other);
        else list.insertBefore(other, row);
        renumber();
        button.focus();
      });
      slot.appendChild(button);
    });
  });
})();
