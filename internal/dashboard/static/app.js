// Enhances the dashboard's server-rendered pages; every page works without it.
"use strict";

// Relative times ("3 minutes ago") are kept current; the absolute time stays in the title.
function refreshTimes() {
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const el of document.querySelectorAll("time[data-relative]")) {
    const seconds = (Date.parse(el.dateTime) - Date.now()) / 1000;
    const unit = units.find(([, size]) => Math.abs(seconds) >= size);
    el.textContent = unit ? format.format(Math.round(seconds / unit[1]), unit[0]) : "just now";
  }
}

// The build log streams in as Server-Sent Events of lines the server has already escaped and coloured.
function streamLog() {
  const log = document.getElementById("log");
  if (!log || !log.dataset.stream || !window.EventSource) return;
  const status = document.getElementById("status");
  const follow = document.getElementById("follow");
  const tones = { deployed: "ok", failed: "bad", cancelled: "off" };
  const showStatus = (value) => {
    status.textContent = value;
    status.className = "status " + (tones[value] || "busy");
  };
  const source = new EventSource(log.dataset.stream);
  source.addEventListener("line", (event) => {
    for (const html of event.data.split("\n")) {
      const line = document.createElement("span");
      line.className = "line";
      line.innerHTML = html; // server-rendered: text escaped, only spans with classes
      log.append(line, "\n");
    }
    if (follow && follow.checked) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("status", (event) => showStatus(event.data));
  source.addEventListener("end", (event) => {
    source.close();
    showStatus(event.data);
    for (const el of document.querySelectorAll("[data-while-running]")) el.hidden = true;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  refreshTimes();
  setInterval(refreshTimes, 30000);
  streamLog();
});
