// An explanation that has not ended yet: poll the JSON API and reload the page once it has.
"use strict";

(function () {
  const status = document.getElementById("explanation-status");
  if (!status || !status.hasAttribute("data-live")) return;
  const timer = setInterval(async () => {
    const answer = await fetch(`/v1/explanations/${status.dataset.explanationId}`, {
      headers: { Accept: "application/json" },
    });
    if (answer.ok && (await answer.json()).terminal) {
      clearInterval(timer);
      window.location.reload();
    }
  }, 1500);
})();
