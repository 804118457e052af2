// The console's only script: the live sensor chart on a sensors device's page.
// It polls the fleet, which reads the device's /sensors with the operator's session. Each field
// is scaled to its own min..max over the last `keep` samples.
"use strict";
(function () {
  const canvas = document.getElementById("chart");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  const colors = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df"];
  const series = {};          // field -> [[ts, value], ...], newest last
  const keep = 120;
  const status = document.getElementById("chart-status");
  window.fleetChart = {series: series, samples: 0};  // read by the browser test

  function draw() {
    const names = Object.keys(series).sort();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#d0d4dc";
    ctx.strokeRect(0, 0, canvas.width, canvas.height);
    names.forEach(function (name, i) {
      const pts = series[name];
      if (pts.length < 2) return;
      let lo = Math.min.apply(null, pts.map(p => p[1])), hi = Math.max.apply(null, pts.map(p => p[1]));
      if (hi === lo) { hi += 1; lo -= 1; }
      ctx.strokeStyle = colors[i % colors.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      pts.forEach(function (p, j) {
        const x = (j / Math.max(pts.length - 1, 1)) * canvas.width;
        const y = canvas.height - 10 - ((p[1] - lo) / (hi - lo)) * (canvas.height - 20);
        if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
    document.getElementById("chart-legend").textContent = names.map(function (n, i) {
      const last = series[n][series[n].length - 1];
      return n + " = " + (last ? last[1] : "?") + " (" + colors[i % colors.length] + ")";
    }).join("   ");
  }

  async function poll() {
    try {
      const res = await fetch(canvas.dataset.src, {credentials: "same-origin"});
      if (!res.ok) throw new Error("status " + res.status);
      const body = await res.json();
      Object.keys(body.fields || {}).forEach(function (name) {
        const f = body.fields[name];
        const pts = series[name] || (series[name] = []);
        const last = pts[pts.length - 1];
        if (!last || last[0] !== f.ts || last[1] !== f.value) {
          pts.push([f.ts, f.value]);
          window.fleetChart.samples++;
          if (pts.length > keep) pts.shift();
        }
      });
      status.textContent = window.fleetChart.samples + " samples";
      draw();
    } catch (e) {
      status.textContent = "device not reachable: " + e.message;
    }
  }
  poll();
  setInterval(poll, 500);
})();
