// A job's page: progress, state and warnings from the job's event stream; the curves redrawn from
// /v1/jobs/{id}/metrics after every epoch; the page reloads once the job ends (model link, failure).
"use strict";

(function () {
  const status = document.getElementById("job-status");
  const jobId = status.dataset.jobId;
  const note = document.getElementById("live-note");
  let epochs = JSON.parse(document.getElementById("epochs-data").textContent);
  BatchCamCharts.render(epochs);
  if (!status.hasAttribute("data-live")) return;

  const shownWarnings = new Set(
    Array.from(document.querySelectorAll("#warning-list li")).map((item) => item.textContent),
  );

  async function reloadCurves() {
    const answer = await fetch(`/v1/jobs/${jobId}/metrics`, { headers: { Accept: "application/json" } });
    if (!answer.ok) return;
    epochs = (await answer.json()).epochs;
    BatchCamCharts.render(epochs);
  }

  BatchCam.followJob(jobId, {
    progress: (progress) => BatchCam.setProgress(status, progress),
    epoch: (event) => {
      if (!epochs.some((record) => record.epoch === event.epoch)) reloadCurves();
    },
    warning: (event) => {
      if (shownWarnings.has(event.message)) return;
      shownWarnings.add(event.message);
      const item = document.createElement("li");
      item.textContent = event.message;
      document.getElementById("warning-list").appendChild(item);
      document.getElementById("warnings").hidden = false;
    },
    state: (event) => {
      BatchCam.setState(status, event.state);
      if (BatchCam.TERMINAL.includes(event.state)) {
        const cancel = document.getElementById("cancel-form");
        if (cancel) cancel.hidden = true;
        BatchCam.setProgress(status, { fraction: event.state === "succeeded" ? 1 : null, eta_seconds: null });
        note.textContent = `The job ${event.state}; reloading the page…`;
        setTimeout(() => window.location.reload(), 1000);
      }
    },
  });
})();
