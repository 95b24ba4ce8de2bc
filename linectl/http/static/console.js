/* The console's little script: shipped in the package, no framework, no build.
 * - fills the session's CSRF token into forms that came without one (board fragments
 *   are rendered once for every browser, so they cannot carry it);
 * - posts forms marked class="act" in the background and shows the answer in place
 *   (the board keeps its live stream); without this script they post as usual;
 * - print buttons open the printable report and print it. */
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

  window.linectl = { fillCsrf: fillCsrf, toast: toast };
  document.addEventListener("DOMContentLoaded", function () { fillCsrf(document); });
})();
