/* Live character count for agent instructions (limit from data-max-chars). Applies to realtime
   voice agents only, following the "kind" select; no dependencies. */
(function () {
  "use strict";
  function setup(textarea) {
    var limit = parseInt(textarea.getAttribute("data-max-chars"), 10);
    var kind = document.getElementById("id_kind");
    var counter = document.createElement("span");
    counter.className = "agents-charcount";
    counter.setAttribute("aria-live", "polite");
    textarea.parentNode.insertBefore(counter, textarea.nextSibling);
    function update() {
      var length = textarea.value.length;
      var limited = !kind || kind.value === textarea.getAttribute("data-limit-kind");
      counter.textContent = limited ? length + " / " + limit + " characters" : length + " characters (no limit)";
      counter.classList.toggle("over", limited && length > limit);
    }
    textarea.addEventListener("input", update);
    if (kind) { kind.addEventListener("change", update); }
    update();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var fields = document.querySelectorAll("textarea[data-max-chars]");
    for (var i = 0; i < fields.length; i++) { setup(fields[i]); }
  });
})();
