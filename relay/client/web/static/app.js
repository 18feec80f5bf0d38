// The local interfaces' only script (no inline script: the Content-Security-Policy forbids it).
"use strict";

(function () {
  const body = document.body;
  const csrf = body.dataset.csrf || "";

  // A page restored from the back/forward cache is asked for again, so a signed-out or
  // timed-out session shows nothing of what was on it.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });

  // Idle: the relay-side session and the key are wiped by the interface; the screen follows.
  // The interface counts from the last time it heard from this page ("told"), so the screen does
  // too: it never shows a letter after the key behind it was wiped. A warning comes first, so that
  // someone reading without touching anything is not signed out by surprise.
  const idle = parseInt(body.dataset.idleSeconds || "0", 10);
  const warning = document.getElementById("idle-warning");
  let told = Date.now();
  // Long work under way (a video sent or released) keeps the session, at the interface as here.
  function busy() {
    told = Date.now();
    if (warning) { warning.hidden = true; }
  }
  if (body.dataset.unlocked && idle > 0) {
    const every = Math.min(30000, idle * 250);  // how often activity is reported, at most
    const lead = Math.min(60, Math.max(1, Math.floor(idle / 4))) * 1000;  // the warning's head start
    function active() {
      const now = Date.now();
      // Someone typing a long letter is not idle: tell the interface (at once once warned).
      if (now - told > every || (warning && !warning.hidden)) {
        told = now;
        post("/alive");
        if (warning) { warning.hidden = true; }
      }
    }
    ["keydown", "mousedown", "touchstart", "wheel", "input"].forEach(function (name) {
      window.addEventListener(name, active, { passive: true });
    });
    if (warning) {
      warning.querySelector("button").addEventListener("click", active);
    }
    window.setInterval(function () {
      const quiet = Date.now() - told;
      if (quiet > idle * 1000) { window.location.replace("/"); return; }
      if (warning && warning.hidden && quiet > idle * 1000 - lead) { warning.hidden = false; }
    }, 500);
  }

  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
  }

  // The review queue keeps itself current; the title counts what arrived since it was drawn.
  const title = document.getElementById("queue-title");
  const news = document.getElementById("queue-news");
  const poll = parseInt(body.dataset.pollSeconds || "0", 10);
  if (title && poll > 0) {
    const baseTitle = document.title;
    window.setInterval(function () {
      fetch("/queue.json", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) {
          if (!state) { return; }
          document.title = state.new > 0 ? "(" + state.new + ") " + baseTitle : baseTitle;
          if (news && state.new > 0) {
            news.hidden = false;
            news.textContent = "";
            const link = document.createElement("a");
            link.href = "/";
            link.id = "show-new";
            link.textContent = (news.dataset.text || "+{n}").replace("{n}", state.new);
            news.appendChild(link);
          }
        }).catch(function () {});
    }, poll * 1000);
  }

  // Long work: follow its progress; reload when it is done, so the page shows the result.
  function follow(box, onDone) {
    const id = box.dataset.job;
    const bar = box.querySelector("progress");
    const label = box.querySelector(".job-state");
    const timer = window.setInterval(function () {
      fetch("/jobs/" + id, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { window.clearInterval(timer); return; }
          bar.value = job.percent;
          box.dataset.state = job.state;
          if (job.state === "running") { busy(); label.textContent = job.percent + "%"; return; }
          window.clearInterval(timer);
          if (job.state === "failed") { label.textContent = job.error || ""; return; }
          onDone(job);
        }).catch(function () {});
    }, 700);
  }
  document.querySelectorAll(".job[data-job]").forEach(function (box) {
    if (box.dataset.state !== "running") { return; }
    follow(box, function () {
      const result = document.getElementById("result");
      if (result && result.dataset.whenFinished) {
        result.textContent = result.dataset.whenFinished;
        box.querySelector(".job-state").textContent = "100%";
      } else {
        window.location.reload();
      }
    });
  });

  // The app: send a video with progress, pause and resume.
  const form = document.getElementById("video-form");
  if (form) {
    const panel = document.getElementById("video-progress");
    const bar = document.getElementById("video-bar");
    const percent = document.getElementById("video-percent");
    const phase = document.getElementById("video-phase");
    const pause = document.getElementById("pause-video");
    const resume = document.getElementById("resume-video");
    const error = document.getElementById("video-error");
    let job = null;
    let timer = null;
    let pauseAsked = false;  // asked for before the interface named the job: sent as soon as it does

    const done = document.getElementById("video-done");

    function failed(message, value) {
      show("failed", value || 0);
      pause.hidden = true;
      // A send the interface took on can carry on from where it stopped; one it never took can be sent again.
      resume.hidden = !job;
      form.querySelector("button").disabled = Boolean(job);
      error.hidden = false;
      error.textContent = message;
    }
    function show(state, value) {
      bar.value = value;
      percent.textContent = value + "%";
      phase.textContent = phase.dataset[state] || phase.textContent;
      panel.dataset.state = state;
    }
    function watch() {
      if (timer) { window.clearInterval(timer); }
      timer = window.setInterval(function () {
        fetch("/jobs/" + job, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
          if (j.state === "running") { busy(); show(j.percent > 0 ? "sending" : "reading", j.percent); return; }
          window.clearInterval(timer);
          if (j.state === "paused") { show("paused", j.percent); pause.hidden = true; resume.hidden = false; }
          else if (j.state === "finished") {
            show("finished", 100); pause.hidden = true; resume.hidden = true; done.hidden = false;
          } else { failed(j.error || error.dataset.refused, j.percent); }
        }).catch(function () {});
      }, 500);
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const file = document.getElementById("video-file").files[0];
      if (!file) { return; }
      panel.hidden = false;
      show("reading", 0);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.endpoint);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("X-Relay-To", document.getElementById("video-to").value);
      xhr.setRequestHeader("Content-Type", file.type || "video/mp4");
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { show("reading", 0); } };
      xhr.onerror = function () { failed(error.dataset.unreachable, 0); };
      xhr.onload = function () {
        // A short sentence in plain text is shown; a page (a refusal, the sign-in page after the
        // idle time) is not shown as its source.
        const type = xhr.getResponseHeader("Content-Type") || "";
        if (xhr.status !== 200 || type.indexOf("application/json") !== 0) {
          failed(xhr.status !== 200 && type.indexOf("text/plain") === 0 ? xhr.responseText : error.dataset.refused, 0);
          return;
        }
        job = JSON.parse(xhr.responseText).id;
        panel.dataset.job = job;
        if (pauseAsked) { post("/jobs/" + job + "/pause"); }
        watch();
      };
      xhr.send(file);
      form.querySelector("button").disabled = true;
    });
    // Carrying on what an earlier session left unsent: the interface already named the job.
    if (panel.dataset.job) {
      job = panel.dataset.job;
      form.querySelector("button").disabled = true;
      watch();
    }
    pause.addEventListener("click", function () {
      if (job) { post("/jobs/" + job + "/pause"); } else { pauseAsked = true; }
    });
    resume.addEventListener("click", function () {
      if (!job) { return; }
      error.hidden = true;
      post("/jobs/" + job + "/resume").then(function () { resume.hidden = true; pause.hidden = false; watch(); });
    });
  }
})();
