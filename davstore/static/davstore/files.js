/* davstore's Files page: drag-and-drop upload of files and folders, one progress bar a file.
 *
 * Each file is one POST to the page's own upload form (its action, its CSRF token, its
 * "folder" and "replace" fields), sent with XMLHttpRequest for its upload progress and
 * "Accept: application/json" for an answer without a redirect; a file from a dropped or
 * chosen folder says which folders to make in "relative". Without this script the form
 * uploads as before. When every file is done the listing is fetched again and replaced.
 */
(function () {
  "use strict";

  var CONCURRENT = 2;

  function start() {
    var form = document.getElementById("davstore-upload");
    var root = document.querySelector(".davstore");
    if (!form || !root || !window.FormData || !window.XMLHttpRequest) {
      return;
    }
    root.classList.add("davstore-js");
    var list = document.getElementById("davstore-progress");
    var input = document.getElementById("davstore-files");
    var folderInput = document.getElementById("davstore-folder-input");
    var queue = [];
    var running = 0;
    var failed = 0;

    function row(item) {
      var li = document.createElement("li");
      li.setAttribute("data-state", "queued");
      li.setAttribute("data-name", (item.dir ? item.dir + "/" : "") + item.file.name);
      var name = document.createElement("span");
      name.className = "davstore-file-name";
      name.textContent = li.getAttribute("data-name");
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      var status = document.createElement("span");
      status.className = "davstore-status";
      status.textContent = "Waiting";
      li.appendChild(name);
      li.appendChild(bar);
      li.appendChild(status);
      list.appendChild(li);
      return { li: li, bar: bar, status: status };
    }

    function finish(view, state, text) {
      view.li.setAttribute("data-state", state);
      view.status.textContent = text;
      if (state === "done") {
        view.bar.value = 100;
      } else {
        failed += 1;
      }
      running -= 1;
      next();
    }

    function send(item) {
      var view = item.view;
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.append("folder", form.elements.folder.value);
      data.append("relative", item.dir);
      if (form.elements.replace.checked) {
        data.append("replace", "on");
      }
      data.append("files", item.file, item.file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");  // a 403, not a redirect
      xhr.setRequestHeader("X-CSRFToken", form.elements.csrfmiddlewaretoken.value);
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && event.total > 0) {
          view.bar.value = Math.min(99, Math.floor((event.loaded / event.total) * 100));
        }
      });
      xhr.addEventListener("load", function () {
        var answer = null;
        try {
          answer = JSON.parse(xhr.responseText);
        } catch (error) {
          answer = null;
        }
        if (xhr.status === 200 && answer && answer.errors.length === 0) {
          finish(view, "done", "Uploaded");
        } else if (answer && answer.errors && answer.errors.length) {
          finish(view, "error", answer.errors.join(" "));
        } else {
          finish(view, "error", "Failed: HTTP " + xhr.status);
        }
      });
      xhr.addEventListener("error", function () {
        finish(view, "error", "Failed: the connection was lost");
      });
      view.li.setAttribute("data-state", "sending");
      view.status.textContent = "Uploading";
      xhr.send(data);
    }

    function next() {
      while (running < CONCURRENT && queue.length) {
        running += 1;
        send(queue.shift());
      }
      if (running === 0 && queue.length === 0) {
        refresh();
      }
    }

    function add(items) {
      if (items.length) {
        form.classList.add("davstore-busy");  // shown on phones too, for its bars
      }
      items.forEach(function (item) {
        item.view = row(item);
        queue.push(item);
      });
      next();
    }

    // The listing again, without leaving the page (the progress stays visible).
    function refresh() {
      var area = document.getElementById("davstore-area");
      var xhr = new XMLHttpRequest();
      xhr.open("GET", window.location.href);
      xhr.responseType = "document";
      xhr.addEventListener("load", function () {
        var fresh = xhr.response && xhr.response.getElementById("davstore-area");
        if (fresh && area) {
          area.replaceWith(document.importNode(fresh, true));
        }
        root.setAttribute("data-uploads", failed ? "failed" : "done");
      });
      xhr.send();
    }

    function readAll(reader, done) {
      var found = [];
      (function more() {
        reader.readEntries(function (entries) {
          if (!entries.length) {
            done(found);
            return;
          }
          found = found.concat(Array.prototype.slice.call(entries));
          more();
        }, function () { done(found); });
      })();
    }

    // Every file below a dropped entry, with the folders leading to it.
    function walk(entry, dir, out, done) {
      if (entry.isFile) {
        entry.file(function (file) {
          out.push({ file: file, dir: dir });
          done();
        }, done);
        return;
      }
      if (!entry.isDirectory) {
        done();
        return;
      }
      var inner = dir ? dir + "/" + entry.name : entry.name;
      readAll(entry.createReader(), function (children) {
        var left = children.length;
        if (!left) {
          done();
          return;
        }
        children.forEach(function (child) {
          walk(child, inner, out, function () {
            left -= 1;
            if (!left) {
              done();
            }
          });
        });
      });
    }

    function dropped(transfer) {
      var items = transfer.items ? Array.prototype.slice.call(transfer.items) : [];
      var entries = [];
      var plain = [];
      items.forEach(function (item) {
        if (item.kind !== "file") {
          return;
        }
        var entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
        if (entry) {
          entries.push(entry);
        } else if (item.getAsFile()) {
          plain.push({ file: item.getAsFile(), dir: "" });
        }
      });
      if (!items.length && transfer.files) {
        Array.prototype.forEach.call(transfer.files, function (file) {
          plain.push({ file: file, dir: "" });
        });
      }
      if (!entries.length) {
        add(plain);
        return;
      }
      var out = plain;
      var left = entries.length;
      entries.forEach(function (entry) {
        walk(entry, "", out, function () {
          left -= 1;
          if (!left) {
            add(out);
          }
        });
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      add(Array.prototype.map.call(input.files, function (file) {
        return { file: file, dir: "" };
      }));
      input.value = "";
    });
    if (folderInput) {
      folderInput.addEventListener("change", function () {
        add(Array.prototype.map.call(folderInput.files, function (file) {
          var path = file.webkitRelativePath || file.name;
          return { file: file, dir: path.split("/").slice(0, -1).join("/") };
        }));
        folderInput.value = "";
      });
    }

    var depth = 0;
    function carriesFiles(event) {
      var types = event.dataTransfer && event.dataTransfer.types;
      return types && Array.prototype.indexOf.call(types, "Files") !== -1;
    }
    document.addEventListener("dragenter", function (event) {
      if (carriesFiles(event)) {
        depth += 1;
        root.classList.add("davstore-dragging");
      }
    });
    document.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (!depth) {
        root.classList.remove("davstore-dragging");
      }
    });
    document.addEventListener("dragover", function (event) {
      if (carriesFiles(event)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
      }
    });
    document.addEventListener("drop", function (event) {
      depth = 0;
      root.classList.remove("davstore-dragging");
      if (!event.dataTransfer || !carriesFiles(event)) {
        return;
      }
      event.preventDefault();
      dropped(event.dataTransfer);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
