/* The console's little script: shipped in the package, no framework, no build.
 * - fills the session's CSRF token into forms that came without one (board fragments
 *   are rendered once for every browser, so they cannot carry it);
 * - posts forms marked class="act" in the background and shows the answer in place
 *   (the board keeps its live stream); without this script they post as usual;
 * - print buttons open the printable report and print it;
 * - a few minutes before the session ends, a warning with the time left and a
 *   button that renews it (the session's end as the server gave it, on the
 *   server's clock: the browser's own clock may be off). */
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const token = meta ? meta.content : "";

  function fillCsrf(root) {
    if (!token) return;
    root.querySelectorAll('input[name="csrf_token"]').forEach(function (el) {
      if (!el.value) el.value = token;
    });
  }

  let toastTimer = null;
  function toast(text, bad) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = bad ? "bad" : "ok";
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, bad ? 8000 : 2500);
  }

  async function submitInBackground(form) {
    const buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      const r = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        redirect: "manual",
        credentials: "same-origin",
      });
      if (r.type === "opaqueredirect" || r.ok) {
        const board = document.getElementById("board");
        toast(board ? board.dataset.tDone : "OK", false);
        return;
      }
      const page = new DOMParser().parseFromString(await r.text(), "text/html");
      const msg = page.querySelector(".error-message, .field-error, .error");
      toast(msg ? msg.textContent.trim() : "HTTP " + r.status, true);
    } catch (e) {
      toast(String(e), true);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("act")) return;
    fillCsrf(form);
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) { ev.preventDefault(); return; }
    ev.preventDefault();
    submitInBackground(form);
  });

  document.addEventListener("click", function (ev) {
    const btn = ev.target.closest ? ev.target.closest("[data-print]") : null;
    if (!btn) return;
    const w = window.open(btn.dataset.print, "_blank");
    if (w) w.addEventListener("load", function () { w.focus(); w.print(); });
  });

  // --- the warning before the session ends -----------------------------------------------
  const WARN_MS = 5 * 60 * 1000;
  const body = document.body;
  const warning = document.getElementById("session-warning");
  let expiresMs = parseInt(body.dataset.expires || "0", 10);
  let skew = parseInt(body.dataset.serverNow || "0", 10) - Date.now();
  function sessionTick() {
    if (!warning || !expiresMs) return;
    const left = expiresMs - (Date.now() + skew);
    const text = warning.querySelector(".text");
    if (left <= 0) {
      warning.hidden = false;
      warning.dataset.state = "ended";
      text.textContent = warning.dataset.tEnded;
      warning.querySelector("form").hidden = true;
      return;
    }
    warning.hidden = left > WARN_MS;
    if (!warning.hidden) {
      const s = Math.ceil(left / 1000);
      text.textContent = warning.dataset.tWarn.replace("%(left)s", Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"));
    }
  }
  if (warning) {
    setInterval(sessionTick, 1000);
    sessionTick();
    warning.querySelector("form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      fillCsrf(ev.target);
      try {
        const r = await fetch("/session/renew", {
          method: "POST", body: new URLSearchParams(new FormData(ev.target)), credentials: "same-origin",
        });
        const d = await r.json();
        if (r.ok && d.expires_ms) {
          expiresMs = d.expires_ms;
          skew = d.server_now_ms - Date.now();
        }
      } catch (e) {
        toast(String(e), true);
      }
      sessionTick();
    });
  }

  window.linectl = { fillCsrf: fillCsrf, toast: toast };
  document.addEventListener("DOMContentLoaded", function () { fillCsrf(document); });
})();
