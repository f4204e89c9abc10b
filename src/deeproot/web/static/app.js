// deeproot pages: progressive enhancement only. Every step works without this file (plain form
// posts); with it: drag and drop, previews, size/type checks before upload, a live survey echo,
// print and save-as-one-file on the result page.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // A product image that does not load (offline, a retired URL) leaves the placeholder, not an icon.
  document.addEventListener("error", function (e) {
    if (e.target && e.target.tagName === "IMG") e.target.classList.add("broken");
  }, true);

  var MAGIC = [
    [0xff, 0xd8, 0xff], // JPEG
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], // PNG
  ];

  function isPhoto(bytes) {
    for (var i = 0; i < MAGIC.length; i++) {
      var m = MAGIC[i], ok = bytes.length >= m.length;
      for (var j = 0; ok && j < m.length; j++) ok = bytes[j] === m[j];
      if (ok) return true;
    }
    // WebP: "RIFF" .... "WEBP"
    return bytes.length >= 12 && bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[2] === 0x46 &&
      bytes[3] === 0x46 && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 &&
      bytes[11] === 0x50;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] !== undefined ? values[k] : ""; });
  }

  function head(file) {
    return file.slice(0, 16).arrayBuffer().then(function (buf) { return new Uint8Array(buf); });
  }

  function setupUpload(form) {
    var inputs = [form.querySelector("#photos"), form.querySelector("#camera")].filter(Boolean);
    var drop = form.querySelector("#drop");
    var check = form.querySelector("#check");
    var previews = form.querySelector("#previews");
    var submit = form.querySelector("#go");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);
    var maxPhotos = parseInt(form.dataset.maxPhotos, 10);
    var problems = [];
    var pending = Promise.resolve();

    function files() {
      var out = [];
      inputs.forEach(function (inp) { Array.prototype.forEach.call(inp.files || [], function (f) { out.push(f); }); });
      return out;
    }

    function show(messages) {
      check.textContent = messages.join(" ");
      check.hidden = messages.length === 0;
    }

    function validate() {
      var list = files();
      previews.textContent = "";
      var checks = list.map(function (f) {
        var li = document.createElement("li");
        var img = document.createElement("img");
        img.alt = "";
        li.appendChild(img);
        li.appendChild(document.createTextNode(f.name));
        previews.appendChild(li);
        if (f.size > maxBytes) {
          li.className = "bad";
          return Promise.resolve(fill(form.dataset.msgSize, {
            name: f.name, size: (f.size / 1048576).toFixed(f.size < 10485760 ? 1 : 0), mb: form.dataset.maxMb }));
        }
        return head(f).then(function (bytes) {
          if (!isPhoto(bytes)) {
            li.className = "bad";
            return fill(form.dataset.msgType, { name: f.name });
          }
          img.src = URL.createObjectURL(f);
          return null;
        });
      });
      pending = Promise.all(checks).then(function (msgs) {
        problems = msgs.filter(Boolean);
        if (list.length > maxPhotos) problems.push(fill(form.dataset.msgCount, { n: maxPhotos }));
        show(problems);
        return problems;
      });
      return pending;
    }

    inputs.forEach(function (inp) { inp.addEventListener("change", validate); });

    ["dragenter", "dragover"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      inputs[0].files = e.dataTransfer.files;
      validate();
    });

    form.addEventListener("submit", function (e) {
      if (form.dataset.checked === "1") return; // checked already: let the browser post
      e.preventDefault();
      if (!files().length) { show([form.dataset.msgNone]); return; }
      pending.then(function () { return validate(); }).then(function (msgs) {
        if (msgs.length) return;
        form.dataset.checked = "1";
        submit.disabled = true;
        submit.textContent = form.dataset.working;
        HTMLFormElement.prototype.submit.call(form);
      });
    });

    // The survey echo: what was chosen, in the page's language, before sending it.
    var echo = form.querySelector("#echo"), echoText = form.querySelector("#echo-text");
    function label(input) { return input.closest("label").textContent.trim().split(" — ")[0]; }
    function updateEcho() {
      var parts = [];
      form.querySelectorAll("input[name=survey_type]:checked").forEach(function (i) { if (i.value) parts.push(label(i)); });
      var chosen = [];
      form.querySelectorAll("input[name=concerns]:checked").forEach(function (i) { chosen.push(label(i)); });
      if (chosen.length) parts.push(chosen.join(", "));
      var cats = [];
      form.querySelectorAll("input[name=categories]:checked").forEach(function (i) { cats.push(label(i)); });
      var text = parts.join(" · ");
      if (cats.length) text += (text ? " → " : "→ ") + cats.join(", ");
      if (text) echoText.textContent = text;
      echo.hidden = !text;
    }
    form.addEventListener("change", function (e) {
      if (e.target && e.target.type !== "file") updateEcho();
    });
  }

  function setupResult(actions) {
    actions.hidden = false;
    actions.querySelector("#print").addEventListener("click", function () { window.print(); });
    actions.querySelector("#save").addEventListener("click", function () {
      // One self-contained file: the stylesheet is inline already; scripts and buttons go.
      var doc = document.documentElement.cloneNode(true);
      doc.querySelectorAll("script, .no-print, .top nav, .top .lang").forEach(function (n) { n.remove(); });
      doc.classList.remove("js");
      var html = "<!doctype html>\n" + doc.outerHTML;
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([html], { type: "text/html;charset=utf-8" }));
      a.download = "deeproot-result-" + new Date().toISOString().slice(0, 10) + ".html";
      document.body.appendChild(a);
      a.click();
      a.remove();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("flow");
    if (form) setupUpload(form);
    var actions = document.getElementById("result-actions");
    if (actions) setupResult(actions);
  });
})();
