// Uploads a dataset to POST /v1/datasets (the JSON API, signed in by the session cookie and the
// page's CSRF token) with a progress bar, then selects it in the form's dataset field.
"use strict";

(function () {
  const input = document.getElementById("upload-file");
  const button = document.getElementById("upload-button");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const select = document.getElementById("f-dataset");

  button.addEventListener("click", () => {
    const file = input.files[0];
    if (!file) {
      status.textContent = "Choose a .npz or .zip file first.";
      input.focus();
      return;
    }
    const body = new FormData();
    body.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/datasets");
    request.setRequestHeader("X-CSRF-Token", BatchCam.csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = event.loaded / event.total;
    });
    request.addEventListener("load", () => {
      button.disabled = false;
      let answer = {};
      try {
        answer = JSON.parse(request.responseText);
      } catch (error) {
        answer = { detail: request.statusText };
      }
      if (request.status !== 200 && request.status !== 201) {
        status.textContent = `Upload refused (${request.status}): ${answer.detail || "unknown error"}`;
        return;
      }
      bar.value = 1;
      let option = Array.from(select.options).find((item) => item.value === answer.id);
      if (!option) {
        option = new Option(`${answer.name} (upload, ${answer.id.slice(0, 8)})`, answer.id);
        select.add(option);
      }
      select.value = answer.id;
      const summary = answer.summary;
      status.textContent = `Uploaded ${answer.name}: ${summary.num_classes} classes, ` +
        `${summary.train_images} training and ${summary.test_images} test images. It is selected below.`;
    });
    request.addEventListener("error", () => {
      button.disabled = false;
      status.textContent = "The upload failed: the server could not be reached.";
    });
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    request.send(body);
  });
})();
