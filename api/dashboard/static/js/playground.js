// The explain playground: posts the chosen images to the JSON API, waits for the explanation (the
// API's ?wait, then polling), and shows each overlay beside its raw heatmap. Changing the colormap
// only changes the overlay's URL: the CAM is computed once.
"use strict";

(function () {
  const form = document.getElementById("playground");
  const modelId = form.dataset.modelId;
  const base = form.dataset.base;
  const input = document.getElementById("images");
  const dropZone = document.getElementById("drop-zone");
  const chosen = document.getElementById("chosen");
  const status = document.getElementById("playground-status");
  const results = document.getElementById("results");
  const colormap = document.getElementById("colormap");
  const WAIT_SECONDS = 20;
  const POLL_MS = 1000;

  const previews = document.getElementById("previews");
  const classNames = JSON.parse(document.getElementById("class-names").textContent);

  function describeChoice() {
    const files = Array.from(input.files);
    chosen.textContent = files.length ? `Chosen: ${files.map((file) => file.name).join(", ")}` : "";
    previews.querySelectorAll("img").forEach((image) => URL.revokeObjectURL(image.src));
    previews.textContent = "";
    files.forEach((file) => {
      const image = document.createElement("img");
      image.src = URL.createObjectURL(file);
      image.alt = `Chosen image ${file.name}`;
      image.width = 64;
      image.height = 64;
      previews.appendChild(image);
    });
  }

  // The model's probability for every class, most likely first, as a labelled bar each.
  function probabilityList(probabilities) {
    const list = document.createElement("ol");
    list.className = "probabilities";
    list.setAttribute("aria-label", "Probability of each class");
    probabilities
      .map((probability, index) => ({ probability, name: classNames[index] }))
      .sort((a, b) => b.probability - a.probability)
      .forEach(({ probability, name }) => {
        const item = document.createElement("li");
        const label = document.createElement("span");
        label.textContent = `${name} ${BatchCam.percent(probability)}`;
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.width = `${Math.round(probability * 100)}%`;
        item.append(label, bar);
        list.appendChild(item);
      });
    return list;
  }

  input.addEventListener("change", describeChoice);
  ["dragenter", "dragover"].forEach((type) =>
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    }),
  );
  ["dragleave", "drop"].forEach((type) =>
    dropZone.addEventListener(type, () => dropZone.classList.remove("dragging")),
  );
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      describeChoice();
    }
  });

  function overlayUrl(item) {
    return `${item.links.overlay}?colormap=${encodeURIComponent(colormap.value)}`;
  }

  colormap.addEventListener("change", () => {
    results.querySelectorAll("img[data-overlay]").forEach((image) => {
      image.src = `${image.dataset.overlay}?colormap=${encodeURIComponent(colormap.value)}`;
    });
    results.querySelectorAll("a[data-overlay]").forEach((link) => {
      link.href = `${link.dataset.overlay}?colormap=${encodeURIComponent(colormap.value)}`;
    });
  });

  function figure(src, alt, caption, overlay) {
    const element = document.createElement("figure");
    const image = document.createElement("img");
    image.src = src;
    image.alt = alt;
    image.width = 160;
    image.height = 160;
    if (overlay) image.dataset.overlay = overlay;
    const text = document.createElement("figcaption");
    text.textContent = caption;
    element.append(image, text);
    return element;
  }

  function link(href, text, overlay) {
    const anchor = document.createElement("a");
    anchor.href = href;
    anchor.textContent = text;
    anchor.setAttribute("download", "");
    if (overlay) anchor.dataset.overlay = overlay;
    return anchor;
  }

  function show(explanation) {
    document.getElementById("results-empty").hidden = true;
    explanation.items.forEach((item) => {
      const card = document.createElement("li");
      card.className = "result";
      const name = item.source.filename || `image ${item.index}`;
      const title = document.createElement("h3");
      title.textContent = name;
      card.appendChild(title);
      if (item.error) {
        const error = document.createElement("p");
        error.className = "field-error";
        error.textContent = `Not explained: ${item.error.message}`;
        card.appendChild(error);
        results.prepend(card);
        return;
      }
      const prediction = document.createElement("p");
      prediction.className = "prediction";
      prediction.textContent =
        `predicted ${item.predicted.name} (${BatchCam.percent(item.confidence)}) · ` +
        `CAM for ${item.target.name}`;
      const row = document.createElement("div");
      row.className = "row";
      row.append(
        figure(overlayUrl(item), `Heatmap of ${name} for class ${item.target.name}, over the image`, "overlay", item.links.overlay),
        figure(item.links.raw, `Raw heatmap of ${name} for class ${item.target.name}, in gray levels`, "raw heatmap"),
      );
      const downloads = document.createElement("p");
      downloads.className = "downloads";
      downloads.append(
        link(overlayUrl(item), "overlay PNG", item.links.overlay),
        " · ",
        link(item.links.raw, "raw PNG"),
        " · ",
        link(item.links.array, "CAM .npy"),
        " · ",
      );
      const detail = document.createElement("a");
      detail.href = `${base}/explanations/${explanation.id}`;
      detail.textContent = "explanation page";
      downloads.appendChild(detail);
      card.append(prediction, row);
      if (item.probabilities) card.appendChild(probabilityList(item.probabilities));
      card.appendChild(downloads);
      results.prepend(card);
    });
  }

  async function finished(explanation) {
    let current = explanation;
    while (!current.terminal) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const answer = await fetch(`/v1/explanations/${current.id}`, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(`reading the explanation answered ${answer.status}`);
      current = await answer.json();
      status.textContent = `Explanation ${current.state}…`;
    }
    return current;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!input.files.length) {
      status.textContent = "Choose or drop at least one image first.";
      input.focus();
      return;
    }
    const body = new FormData();
    Array.from(input.files).forEach((file) => body.append("files", file));
    body.append("method", document.getElementById("method").value);
    const target = document.getElementById("target").value;
    if (target !== "") body.append("targets", JSON.stringify(Array.from(input.files).map(() => Number(target))));
    const button = document.getElementById("explain-button");
    button.disabled = true;
    status.textContent = "Explaining…";
    try {
      const answer = await fetch(`/v1/models/${modelId}/explanations?wait=${WAIT_SECONDS}`, {
        method: "POST",
        body,
        headers: { "X-CSRF-Token": BatchCam.csrfToken(), Accept: "application/json" },
      });
      const explanation = await answer.json();
      if (!answer.ok) {
        status.textContent = `Refused (${answer.status}): ${explanation.detail}`;
        return;
      }
      const done = await finished(explanation);
      if (done.state !== "succeeded") {
        status.textContent = `The explanation ${done.state}: ${(done.failure && done.failure.message) || ""}`;
        return;
      }
      show(done);
      status.textContent = `Explained ${done.items.length} image${done.items.length > 1 ? "s" : ""}.`;
    } catch (error) {
      status.textContent = `The explanation could not be made: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
})();
