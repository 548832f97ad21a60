// sealfs console: the little the pages need a script for. Everything works
// without it except the upload progress and the resync page's refresh.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  // Upload: one request per file, each with its own progress bar.
  var form = document.querySelector("form[data-upload]");
  if (form) {
    form.addEventListener("submit", function (ev) {
      var input = form.querySelector('input[type="file"]');
      if (!input.files.length || !window.FormData) return;
      ev.preventDefault();
      var list = form.querySelector(".progress");
      var button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      list.textContent = "";
      var files = Array.prototype.slice.call(input.files);
      var failed = 0;
      var next = function (i) {
        if (i >= files.length) {
          if (!failed) {
            window.location.reload(); // the page lists them, and says so once
            return;
          }
          button.disabled = false;
          var note = document.createElement("li");
          note.setAttribute("role", "alert");
          note.textContent = failed + " of " + files.length + " upload(s) failed; reload the page to see what was stored.";
          list.appendChild(note);
          return;
        }
        var f = files[i];
        var li = document.createElement("li");
        var label = document.createElement("span");
        label.textContent = f.name + " ";
        var bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", "upload of " + f.name);
        li.appendChild(label);
        li.appendChild(bar);
        list.appendChild(li);
        var fd = new FormData();
        fd.append("file", f, f.name);
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.getAttribute("action"));
        xhr.setRequestHeader("X-CSRF-Token", csrf);
        xhr.upload.onprogress = function (e) {
          if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
        };
        xhr.onload = function () {
          if (xhr.status >= 200 && xhr.status < 300) {
            bar.value = 100;
            label.textContent = f.name + " — stored ";
          } else {
            failed++;
            label.textContent = f.name + " — failed (" + xhr.status + ") ";
          }
          next(i + 1);
        };
        xhr.onerror = function () {
          failed++;
          label.textContent = f.name + " — failed ";
          next(i + 1);
        };
        xhr.send(fd);
      };
      next(0);
    });
  }

  // A page that follows a job refreshes itself until the job is done.
  var r = document.querySelector("[data-refresh]");
  if (r) {
    setTimeout(function () { window.location.reload(); }, 1000 * Number(r.getAttribute("data-refresh")));
  }
})();
