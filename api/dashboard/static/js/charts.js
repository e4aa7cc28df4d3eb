// Training curves: one uPlot chart per family of per-epoch metrics (the names group by family:
// *loss, *accuracy, *distance*, as batchcam.training.progress.EpochMetrics says), and the numbers
// as a table for anyone who cannot see the charts.
"use strict";

window.BatchCamCharts = (function () {
  const FAMILIES = {
    loss: (name) => name.endsWith("loss"),
    accuracy: (name) => name.includes("accuracy"),
    distance: (name) => name.includes("distance"),
  };
  const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989"];
  const charts = {};

  function seriesNames(epochs, family) {
    const names = new Set();
    epochs.forEach((record) => {
      Object.entries(record.metrics).forEach(([name, value]) => {
        if (value !== null && typeof value === "number" && FAMILIES[family](name)) names.add(name);
      });
    });
    return Array.from(names).sort();
  }

  function chartWidth(element) {
    return Math.max(260, Math.floor(element.getBoundingClientRect().width));
  }

  function draw(family, epochs) {
    const element = document.getElementById(`chart-${family}`);
    if (!element) return;
    const names = seriesNames(epochs, family);
    const data = [epochs.map((record) => record.epoch)].concat(
      names.map((name) => epochs.map((record) => record.metrics[name] ?? null)),
    );
    if (charts[family]) charts[family].destroy();
    element.textContent = "";
    if (!epochs.length) return;
    const options = {
      width: chartWidth(element),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100] }, {}],
      series: [{ label: "epoch" }].concat(
        names.map((name, i) => ({
          label: name.replace(/_/g, " "),
          stroke: COLOURS[i % COLOURS.length],
          width: 2,
          points: { show: true, size: 6 },
        })),
      ),
    };
    charts[family] = new uPlot(options, data, element);
  }

  function table(epochs) {
    const holder = document.getElementById("epoch-table");
    if (!holder) return;
    holder.textContent = "";
    if (!epochs.length) return;
    const names = Array.from(new Set(epochs.flatMap((record) => Object.keys(record.metrics)))).filter(
      (name) => name !== "epoch",
    );
    const tableElement = document.createElement("table");
    const head = tableElement.createTHead().insertRow();
    ["epoch"].concat(names).forEach((name) => {
      const cell = document.createElement("th");
      cell.scope = "col";
      cell.textContent = name.replace(/_/g, " ");
      head.appendChild(cell);
    });
    const body = tableElement.createTBody();
    epochs.forEach((record) => {
      const row = body.insertRow();
      row.insertCell().textContent = record.epoch;
      names.forEach((name) => {
        const value = record.metrics[name];
        row.insertCell().textContent = typeof value === "number" ? value.toFixed(4) : "—";
      });
    });
    holder.appendChild(tableElement);
  }

  function render(epochs) {
    // Shown before drawing: uPlot sizes each chart from its box's width.
    ["charts", "numbers"].forEach((id) => {
      const element = document.getElementById(id);
      if (element) element.hidden = epochs.length === 0;
    });
    Object.keys(FAMILIES).forEach((family) => draw(family, epochs));
    table(epochs);
    const empty = document.getElementById("curves-empty");
    if (empty) empty.hidden = epochs.length > 0;
  }

  window.addEventListener("resize", () => {
    Object.entries(charts).forEach(([family, chart]) => {
      const element = document.getElementById(`chart-${family}`);
      if (element) chart.setSize({ width: chartWidth(element), height: 220 });
    });
  });

  return { render };
})();
