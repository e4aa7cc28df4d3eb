// The jobs list: each unfinished job's row follows its event stream. A browser opens at most six
// connections to one server, so past MAX_STREAMS rows the others are polled instead.
"use strict";

(function () {
  const MAX_STREAMS = 4;
  const POLL_MS = 5000;
  const rows = Array.from(document.querySelectorAll("tr[data-live]"));

  function finish(row, state) {
    BatchCam.setState(row, state);
    if (BatchCam.TERMINAL.includes(state)) {
      row.removeAttribute("data-live");
      if (state === "succeeded") BatchCam.setProgress(row, { fraction: 1, eta_seconds: null });
      else BatchCam.setProgress(row, { fraction: null, eta_seconds: null });
    }
  }

  rows.slice(0, MAX_STREAMS).forEach((row) => {
    BatchCam.followJob(row.dataset.jobId, {
      progress: (progress) => BatchCam.setProgress(row, progress),
      state: (event) => finish(row, event.state),
    });
  });

  const polled = rows.slice(MAX_STREAMS);
  if (polled.length) {
    setInterval(() => {
      polled.filter((row) => row.hasAttribute("data-live")).forEach(async (row) => {
        const answer = await fetch(`/v1/jobs/${row.dataset.jobId}`, { headers: { Accept: "application/json" } });
        if (!answer.ok) return;
        const job = await answer.json();
        BatchCam.setProgress(row, job.progress);
        finish(row, job.state);
      });
    }, POLL_MS);
  }
})();
