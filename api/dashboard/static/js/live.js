// Shared helpers of the dashboard's pages: follow a job's event stream, format numbers, call the
// JSON API with the session cookie and the page's CSRF token.
"use strict";

window.BatchCam = (function () {
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const whole = Math.round(seconds);
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = whole % 60;
    const pad = (n) => String(n).padStart(2, "0");
    if (hours) return `${hours} h ${pad(minutes)} min`;
    if (minutes) return `${minutes} min ${pad(secs)} s`;
    return `${secs} s`;
  }

  function percent(fraction) {
    return fraction === null || fraction === undefined ? "—" : `${Math.round(fraction * 100)} %`;
  }

  // Follows /v1/jobs/{id}/events (the JSON API's stream; the cookie signs it in). The browser
  // reconnects by itself with Last-Event-ID; the stream ends after the job's terminal state.
  function followJob(jobId, handlers) {
    const source = new EventSource(`/v1/jobs/${jobId}/events`);
    const on = (type, handler) => {
      if (!handler) return;
      source.addEventListener(type, (message) => handler(JSON.parse(message.data)));
    };
    on("progress", handlers.progress);
    on("epoch", handlers.epoch);
    on("warning", handlers.warning);
    source.addEventListener("state", (message) => {
      const data = JSON.parse(message.data);
      if (handlers.state) handlers.state(data);
      if (TERMINAL.includes(data.state)) source.close();
    });
    source.addEventListener("unauthorized", () => source.close());
    return source;
  }

  function setState(container, state) {
    const badge = container.querySelector('[data-field="state"] .badge');
    if (!badge) return;
    badge.className = `badge state-${state}`;
    badge.textContent = state;
  }

  function setProgress(container, progress) {
    const bar = container.querySelector('[data-field="progress"]');
    if (bar && progress.fraction !== null && progress.fraction !== undefined) {
      bar.value = progress.fraction;
      bar.textContent = percent(progress.fraction);
    }
    const label = container.querySelector('[data-field="percent"]');
    if (label) label.textContent = percent(progress.fraction);
    const eta = container.querySelector('[data-field="eta"]');
    if (eta) eta.textContent = duration(progress.eta_seconds);
    const epoch = container.querySelector('[data-field="epoch"]');
    if (epoch && progress.epoch) epoch.textContent = `${progress.epoch} of ${progress.epochs}`;
  }

  return { TERMINAL, csrfToken, duration, percent, followJob, setState, setProgress };
})();
