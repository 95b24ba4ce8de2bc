// The alarm banner of every console page, kept live, and the alarm's sound.
// On every `alarm_summary` event of /api/events the banner is fetched again
// from the server (/alarms/banner: rendered in the page's language, with its
// forms' CSRF token) and put in place. While an alarm sounds (the banner's
// data-sound: high, medium, low) a WebAudio beep repeats, faster and higher
// the higher the priority, until it is silenced or acknowledged. No sound
// file and nothing from outside: stations are often offline.
(function () {
  "use strict";
  const PATTERN = {
    high: { every: 1000, hz: 880, beeps: 3 },
    medium: { every: 3000, hz: 660, beeps: 2 },
    low: { every: 8000, hz: 440, beeps: 1 },
  };
  let audio = null;
  let timer = null;
  let sounding = "";

  function beep(p) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      const t0 = audio.currentTime;
      for (let i = 0; i < p.beeps; i++) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = p.hz;
        gain.gain.setValueAtTime(0.2, t0 + i * 0.25);
        gain.gain.setValueAtTime(0, t0 + i * 0.25 + 0.15);
        osc.connect(gain).connect(audio.destination);
        osc.start(t0 + i * 0.25);
        osc.stop(t0 + i * 0.25 + 0.16);
      }
    } catch (e) {
      // No audio device: the banner still shows the alarm.
    }
  }

  function sound(priority) {
    if (priority === sounding) return;
    sounding = priority;
    clearInterval(timer);
    timer = null;
    document.body.dataset.alarmSound = priority;
    const p = PATTERN[priority];
    if (!p) return;
    beep(p);
    timer = setInterval(function () { beep(p); }, p.every);
  }

  function fromBanner() {
    const b = document.getElementById("alarm-banner");
    sound(b ? b.dataset.sound : "");
  }

  async function refresh() {
    const here = window.location.pathname + window.location.search;
    const r = await fetch("/alarms/banner?next=" + encodeURIComponent(here), {
      credentials: "same-origin",
    });
    if (!r.ok) return;
    const slot = document.getElementById("alarm-banner");
    const html = (await r.text()).trim();
    // Keep what an operator is typing into the banner's comment field.
    if (slot && slot.contains(document.activeElement) &&
        document.activeElement.name === "comment") {
      const next = new DOMParser().parseFromString(html, "text/html").getElementById("alarm-banner");
      if (next && next.dataset.alarm === slot.dataset.alarm) return;
    }
    if (slot) slot.outerHTML = html;
    fromBanner();
  }

  function listen() {
    const es = new EventSource("/api/events?types=alarm_summary");
    es.addEventListener("alarm_summary", function () { refresh(); });
    es.addEventListener("session_expired", function () { es.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    fromBanner();
    listen();
  });
})();
