// RelayDesk reports: charts drawn with Apache ECharts (vendored), each bar or cell
// a link to the conversations behind it. The figures come from the page itself.
"use strict";

(function () {
  const source = document.getElementById("report-data");
  if (!source || !window.echarts) return;
  const data = JSON.parse(source.textContent);
  const f = data.figures;
  const query = new URLSearchParams(data.query).toString();
  const words = data.labels || {};
  const word = (k) => words[k] || k;
  const charts = [];

  function drill(figure, key) {
    location.href = "/inbox/reports/conversations?figure=" + encodeURIComponent(figure) +
      "&key=" + encodeURIComponent(key) + (query ? "&" + query : "");
  }

  function chart(id, option, figure, keyOf) {
    const el = document.getElementById(id);
    if (!el) return;
    const c = echarts.init(el, null, { renderer: "svg" });
    c.setOption(Object.assign({ animation: false, tooltip: {}, grid: { containLabel: true, left: 8, right: 8, top: 24, bottom: 8 } }, option));
    if (figure) c.on("click", function (p) { drill(figure, keyOf(p)); });
    charts.push(c);
    el.dataset.drawn = "1";
  }

  function bars(id, entries, figure, label) {
    chart(id, {
      xAxis: { type: "category", data: entries.map((e) => label ? label(e[0]) : e[0]), axisLabel: { interval: 0, rotate: entries.length > 4 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: entries.map((e) => e[1]), itemStyle: { color: "#1f6feb" } }],
    }, figure, (p) => entries[p.dataIndex][0]);
  }

  bars("chart-channels", Object.entries(f.volume.by_channel), "channel");
  const weekdays = (document.getElementById("chart-heatmap") || { dataset: {} }).dataset.weekdays;
  const days = (weekdays || "Mon,Tue,Wed,Thu,Fri,Sat,Sun").split(",");
  const peak = Math.max(1, ...f.volume.heatmap.map((c) => c[2]));
  chart("chart-heatmap", {
    tooltip: { position: "top" },
    xAxis: { type: "category", data: [...Array(24).keys()].map(String), splitArea: { show: true } },
    yAxis: { type: "category", data: days, splitArea: { show: true } },
    visualMap: { min: 0, max: peak, calculable: false, orient: "horizontal", left: "center", bottom: 0, show: false },
    series: [{ type: "heatmap", data: f.volume.heatmap.map((c) => [c[1], c[0], c[2]]) }],
  }, "heatmap", (p) => p.data[1] + "-" + p.data[0]);
  // Long labels ("Confirmed by the customer"): one bar per row, the label wrapped
  // beside it, so nothing is cut at any width.
  function rows(id, entries, figure, label) {
    const el = document.getElementById(id);
    if (!el) return;
    el.style.height = Math.max(160, 36 * entries.length + 48) + "px";
    const width = Math.max(80, Math.min(180, Math.floor(el.clientWidth * 0.4)));
    chart(id, {
      yAxis: {
        type: "category",
        inverse: true,
        data: entries.map((e) => label ? label(e[0]) : e[0]),
        axisLabel: { interval: 0, width: width, overflow: "break", lineHeight: 14 },
      },
      xAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: entries.map((e) => e[1]), itemStyle: { color: "#1f6feb" } }],
    }, figure, (p) => entries[p.dataIndex][0]);
  }

  rows("chart-outcomes", Object.entries(f.bot.outcomes), "bot_outcome", word);
  rows("chart-reasons", Object.entries(f.bot.handoffs_by_reason), "handoff_reason", word);
  chart("chart-backlog", {
    xAxis: { type: "category", data: f.people.backlog.map((p) => p[0].slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "line", data: f.people.backlog.map((p) => p[1]), areaStyle: {} }],
  });
  bars("chart-csat", Object.entries(f.satisfaction.distribution).map((e) => [e[0], e[1]]), "csat_score", (k) => "★".repeat(Number(k)));

  for (const cell of document.querySelectorAll(".duration")) {
    const seconds = Number(cell.dataset.seconds);
    if (cell.dataset.seconds === "") { cell.textContent = "–"; continue; }
    const minutes = Math.round(seconds / 60);
    const min = " " + (words.minutes_short || "min");
    const h = " " + (words.hours_short || "h") + " ";
    cell.textContent = minutes < 60 ? minutes + min : Math.floor(minutes / 60) + h + (minutes % 60) + min;
  }
  window.addEventListener("resize", function () { charts.forEach((c) => c.resize()); });
  document.body.dataset.charts = String(charts.length);
})();
