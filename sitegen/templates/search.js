// ctjp static search: filters window.CTJP_INDEX ([{d, n, p?}]) by substring.
// Results are built with DOM APIs (textContent), never innerHTML.
(function () {
  "use strict";
  var index = window.CTJP_INDEX || [];
  var input = document.getElementById("search-q");
  var form = document.getElementById("search-form");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  if (!input || !form || !status || !list) { return; }
  var LIMIT = 100;
  function run(q) {
    q = (q || "").trim().toLowerCase();
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!q) { status.textContent = index.length + " registered domains in the index."; return; }
    var found = 0;
    for (var i = 0; i < index.length; i++) {
      var e = index[i];
      if (e.d.indexOf(q) === -1) { continue; }
      found++;
      if (found > LIMIT) { continue; }
      var li = document.createElement("li");
      var label = document.createTextNode(e.d);
      if (e.p) {
        var a = document.createElement("a");
        a.setAttribute("href", e.p);
        a.appendChild(label);
        li.appendChild(a);
      } else {
        li.appendChild(label);
      }
      var n = document.createElement("span");
      n.className = "muted";
      n.textContent = " " + e.n + (e.n === 1 ? " issuance" : " issuances");
      li.appendChild(n);
      list.appendChild(li);
    }
    status.textContent = found + (found === 1 ? " match" : " matches") + (found > LIMIT ? ", first " + LIMIT + " shown" : "") + ".";
  }
  var params = new URLSearchParams(window.location.search);
  var q0 = params.get("q") || "";
  input.value = q0;
  run(q0);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); run(input.value); });
  input.addEventListener("input", function () { run(input.value); });
})();
