/* Panorama's pages: draw each chart from its JSON block (no inline script anywhere). */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "fr";
  var locale = lang === "en" ? "en-GB" : "fr-FR";
  var palette = ["#1f3a93", "#b34e00", "#2e7d32", "#6a1b9a", "#00838f", "#8d6e00"];

  function formatter(unit, digits) {
    var nf = new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
    if (unit === "percent") { return function (v) { return nf.format(v) + (lang === "fr" ? "\u00a0%" : "%"); }; }
    if (unit === "money") { return function (v) { return nf.format(v); }; }
    return function (v) { return nf.format(v); };
  }

  function num(v) { return v === null || v === undefined ? null : Number(v); }

  function barOption(spec) {
    var fmt = formatter(spec.unit, spec.unit === "money" ? 1 : 0);
    var series = spec.series.map(function (s, i) {
      var one = { type: "bar", name: s.name, data: s.values.map(num), itemStyle: { color: palette[i] } };
      if (spec.median_band !== null && spec.median_band !== undefined) {
        one.markLine = {
          symbol: "none", silent: true, lineStyle: { color: "#b00020", width: 2, type: "dashed" },
          label: { formatter: spec.median_label + " " + formatter("percent", 1)(num(spec.median)) },
          data: [{ xAxis: spec.median_band }]
        };
      }
      return one;
    });
    return {
      grid: { left: 8, right: 16, top: 24, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", valueFormatter: fmt },
      xAxis: { type: "category", data: spec.categories, axisLabel: { interval: 0, rotate: spec.categories.length > 6 || spec.categories.some(function (c) { return c.length > 14; }) ? 30 : 0 } },
      yAxis: { type: "value", name: spec.axis_name || "", axisLabel: { formatter: fmt } },
      series: series
    };
  }

  function multiplesOption(spec) {
    var n = spec.series.length, cols = 2, rows = Math.ceil(n / cols);
    var option = { title: [], grid: [], xAxis: [], yAxis: [], series: [], tooltip: { trigger: "axis" } };
    spec.series.forEach(function (s, i) {
      var col = i % cols, row = Math.floor(i / cols);
      var top = (row * 100 / rows) + 7, height = 100 / rows - 15;
      var fmt = formatter(s.unit, s.unit === "count" ? 0 : 1);
      option.title.push({ text: s.name, left: (col * 50 + 2) + "%", top: (row * 100 / rows) + "%", textStyle: { fontSize: 13, fontWeight: "bold", color: "#1e1e1e" } });
      option.grid.push({ left: (col * 50 + 8) + "%", width: "38%", top: top + "%", height: height + "%" });
      option.xAxis.push({ type: "category", gridIndex: i, data: spec.categories, axisLabel: { show: row === rows - 1, rotate: 40, fontSize: 10 } });
      option.yAxis.push({ type: "value", gridIndex: i, scale: true, axisLabel: { formatter: fmt, fontSize: 10 } });
      option.series.push({ type: "line", name: s.name, xAxisIndex: i, yAxisIndex: i, data: s.values.map(num), symbolSize: 6, itemStyle: { color: palette[i % palette.length] }, tooltip: { valueFormatter: fmt } });
    });
    return option;
  }

  function stepsOption(spec) {
    var isDate = spec.unit === "date";
    var dayFmt = function (v) { return new Date(v).toLocaleDateString(locale, { year: "numeric", month: "short", day: "numeric" }); };
    var fmt = isDate ? dayFmt : formatter(spec.unit, 2);
    var series = spec.series.map(function (s, i) {
      var one = {
        type: "line", step: "end", name: s.name, symbolSize: 7, symbol: i === 0 ? "rect" : "circle",
        data: s.points.map(function (p) { return [p[0], isDate ? p[1] : num(p[1])]; }),
        itemStyle: { color: palette[i] }, lineStyle: { width: 2, type: i === 0 ? "dashed" : "solid" }
      };
      if (i === 0 && spec.marks && spec.marks.length) {
        one.markLine = {
          symbol: "none", silent: true, lineStyle: { color: "#b00020", width: 2, type: "dotted" },
          label: { formatter: function (p) { return p.name; } },
          data: spec.marks.map(function (m) { return { xAxis: m.at, name: m.label }; })
        };
      }
      return one;
    });
    return {
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      legend: { top: 0, textStyle: { color: "#1e1e1e" } },
      tooltip: { trigger: "axis", valueFormatter: fmt },
      xAxis: { type: "time", axisLabel: { hideOverlap: true } },
      yAxis: { type: isDate ? "time" : "value", name: spec.axis_name || "", scale: isDate, axisLabel: { formatter: fmt } },
      series: series
    };
  }

  function draw(el) {
    if (typeof window.echarts === "undefined" || el.dataset.drawn) { return; }
    var block = document.getElementById(el.dataset.chart);
    if (!block) { return; }
    var spec = JSON.parse(block.textContent);
    var option = spec.kind === "multiples" ? multiplesOption(spec)
      : spec.kind === "steps" ? stepsOption(spec) : barOption(spec);
    option.aria = { enabled: true, decal: { show: true }, label: { description: el.getAttribute("aria-label") } };
    option.animation = false;
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option);
    el.dataset.drawn = "1";
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }  // a refused form: its errors are read first
    drawAll(document);
    if (window.htmx) { window.htmx.onLoad(function (elt) { drawAll(elt); }); }
  });
})();
