// The inspection form on a weak signal (console, issue 27): progressive enhancement of a
// plain multipart form. A submit is sent with fetch; when the phone is offline, or the
// request fails on the way, or the service is briefly unavailable (5xx, 429), the form's
// fields and photos (as Blobs) are kept in IndexedDB and the page says so. The queue is
// sent when the browser says it is online again, on a retry with growing delays, and
// whenever the page is opened. Each inspection carries the idempotency key the server
// put in the form (a new one is made here for the next inspection), so a send repeated
// after a lost response is recorded once. A refusal (4xx) is shown, never retried.
(function () {
  "use strict";
  var form = document.getElementById("inspect-form");
  var status = document.getElementById("queue-status");
  if (!form || !status || !window.indexedDB || !window.fetch || !window.FormData) {
    return;
  }
  var zh = document.documentElement.lang !== "en";
  var T = {
    saved: zh ? "已保存，联网后自动提交" : "Saved; it will be sent when you are back online",
    waiting: zh ? "条巡查已保存在本机，联网后自动提交" : " inspection(s) kept on this phone, "
      + "to be sent when you are back online",
    sending: zh ? "正在提交…" : "Sending…",
    sent: zh ? "已提交" : "Sent",
    refused: zh ? "未能提交：" : "Not sent: ",
    signIn: zh ? "请重新登录；已保存的巡查会在登录后打开此页时自动提交。"
      : "Please sign in again; saved inspections are sent when you open this page again.",
  };
  var DB_NAME = "geo-console-inspections";
  var STORE = "queue";
  var MIN_DELAY = 2000;
  var MAX_DELAY = 60000;
  var delay = MIN_DELAY;
  var timer = null;
  var flushing = false;

  function show(text, isError) {
    status.hidden = false;
    status.className = isError ? "err" : "msg";
    status.textContent = text;
    status.scrollIntoView({ block: "nearest" });
  }

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        req.result.createObjectStore(STORE, { keyPath: "key" });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  // One transaction on the queue; resolves with the request's result once committed.
  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function newKey() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20),
      h.slice(20)].join("-");
  }

  // The form as a queue item: its URL, its key, each field, each photo's bytes as a Blob
  // (read now: a File picked from the camera may not be readable later).
  function snapshot() {
    var data = new FormData(form);
    var parts = [];
    var reads = [];
    data.forEach(function (value, name) {
      if (typeof value === "string") {
        parts.push({ name: name, value: value });
      } else if (value.size > 0) {
        var part = { name: name, filename: value.name, type: value.type };
        parts.push(part);
        reads.push(value.arrayBuffer().then(function (buf) {
          part.value = new Blob([buf], { type: value.type });
        }));
      }
    });
    return Promise.all(reads).then(function () {
      return { key: form.elements.idempotency_key.value, url: form.action, parts: parts,
        saved: Date.now() };
    });
  }

  function send(item) {
    var data = new FormData();
    item.parts.forEach(function (p) {
      if (p.filename !== undefined) {
        data.append(p.name, p.value, p.filename);
      } else {
        data.append(p.name, p.value);
      }
    });
    return fetch(item.url, { method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json" } });
  }

  function retryable(res) {
    return res.status >= 500 || res.status === 429 || res.status === 408;
  }

  function describe(body) {
    var fields = (body && body.fields) || [];
    var lines = fields.map(function (f) { return f.label + (zh ? "：" : ": ") + f.problem; });
    return ((body && body.error) || "") + (lines.length ? " " + lines.join("；") : "");
  }

  function fresh() {
    form.reset();
    form.elements.idempotency_key.value = newKey();
  }

  function queue(item) {
    return withStore("readwrite", function (store) { return store.put(item); })
      .then(function () {
        fresh();
        show(T.saved, false);
        later();
      });
  }

  function later() {
    if (timer === null) {
      timer = setTimeout(function () { timer = null; flush(); }, delay);
      delay = Math.min(delay * 2, MAX_DELAY);
    }
  }

  // Send every queued inspection, oldest first; stop at the first that cannot go yet.
  function flush() {
    if (flushing) {
      return Promise.resolve();
    }
    flushing = true;
    return withStore("readonly", function (store) { return store.getAll(); })
      .then(function (items) {
        items.sort(function (a, b) { return a.saved - b.saved; });
        var next = function (i) {
          if (i >= items.length) {
            return null;
          }
          show(T.sending, false);
          return send(items[i]).then(function (res) {
            if (res.status === 401 || res.status === 403) {
              show(T.signIn, true);
              return null;
            }
            if (retryable(res)) {
              show(T.saved, false);
              later();
              return null;
            }
            return res.json().catch(function () { return {}; }).then(function (body) {
              return withStore("readwrite", function (store) {
                return store.delete(items[i].key);
              }).then(function () {
                if (res.ok) {
                  delay = MIN_DELAY;
                  show(T.sent, false);
                } else {
                  show(T.refused + describe(body), true);
                }
                return next(i + 1);
              });
            });
          }, function () {
            show(T.saved, false);
            later();
            return null;
          });
        };
        return next(0);
      })
      .finally(function () { flushing = false; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    snapshot().then(function (item) {
      if (!navigator.onLine) {
        return queue(item);
      }
      show(T.sending, false);
      return send(item).then(function (res) {
        if (retryable(res)) {
          return queue(item);
        }
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (res.ok) {
            fresh();
            show((body && body.message) || T.sent, false);
          } else {
            show(T.refused + describe(body), true);
          }
        });
      }, function () { return queue(item); });
    }).catch(function () {
      form.submit();  // no IndexedDB after all (private mode): the plain form still works
    });
  });

  window.addEventListener("online", function () {
    delay = MIN_DELAY;
    flush();
  });

  withStore("readonly", function (store) { return store.count(); }).then(function (n) {
    if (n > 0) {
      show(n + T.waiting, false);
      flush();
    }
  }, function () { /* no IndexedDB: the plain form still submits */ });
}());
