// Shared by both kiosk pages: JSON calls to the kiosk's own endpoints and the locker banner.
"use strict";

window.kiosk = (() => {
  const banner = () => document.getElementById("banner");
  const UNAVAILABLE = "Locker unavailable, please wait.";

  // POST a JSON body; resolves to {status, data}. Network failures read as 503.
  async function postJson(path, body) {
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
      let data = {};
      try {
        data = await response.json();
      } catch (_err) {
        data = { ok: false, message: `Unexpected answer (HTTP ${response.status}).` };
      }
      return { status: response.status, data };
    } catch (_err) {
      return { status: 503, data: { ok: false, error: "unavailable", message: UNAVAILABLE } };
    }
  }

  async function getStatus() {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      return await response.json();
    } catch (_err) {
      return { reachable: false, message: UNAVAILABLE, compartments: [] };
    }
  }

  function showBanner(text) {
    const el = banner();
    el.textContent = text || "";
    el.hidden = !text;
  }

  // Poll /api/status every `period` ms; calls onStatus(status) and keeps the banner current.
  function watchStatus(onStatus, period = 2000) {
    const tick = async () => {
      const status = await getStatus();
      showBanner(status.reachable ? "" : status.message || UNAVAILABLE);
      onStatus(status);
      setTimeout(tick, period);
    };
    tick();
  }

  return { postJson, getStatus, showBanner, watchStatus, UNAVAILABLE };
})();
