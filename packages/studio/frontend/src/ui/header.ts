// Header (run, branch, training state, step), the connection banner and the Training card.

import type { Status } from "../api/model.js";
import type { ConnState, Studio } from "../app.js";
import { byId, fmtInt, h } from "./dom.js";

const CONN_TEXT: Record<ConnState, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unauthorized: "unauthorized",
  gone: "not reachable",
};

export function setupHeader(app: Studio): void {
  const runName = byId("run-name");
  const branch = byId("branch");
  const state = byId("train-state");
  const step = byId("step");
  const speed = byId("speed");
  const connText = byId("conn-text");
  const banner = byId("conn-banner");
  const signals = byId("signals");
  let lastState = "";

  const paintState = (st: Status | null): void => {
    const gone = app.conn === "gone";
    // A live server without a training state has no loop running: training has ended.
    const text = gone || st?.state === "unknown" ? "finished" : st ? st.state : "—";
    if (text !== lastState) {
      lastState = text;
      state.textContent = text;
      state.dataset.state = text;
      state.title = gone
        ? "The training process stopped answering (it ended or restarts); the page reconnects on its own."
        : text === "finished" ? "No training loop is running in the process (training ended); data stays browsable." : "";
    }
  };

  app.statusChanged.on((st) => {
    runName.textContent = st.name || "—";
    runName.title = st.name;
    branch.textContent = st.branch ? st.branch.slice(0, 12) : "—";
    branch.title = `experiment hash ${st.branch}`;
    step.textContent = fmtInt(st.step);
    const left = st.stepsLeft !== null ? ` · ${fmtInt(st.stepsLeft)} left` : "";
    speed.textContent = st.state === "running" ? `${st.stepsPerSecond.toFixed(st.stepsPerSecond < 10 ? 1 : 0)} steps/s${left}` : left.replace(" · ", "");
    paintState(st);
    document.title = `${st.name || "run"} · step ${fmtInt(st.step)} · WeightsLab Studio`;
    const rows: Node[] = [];
    for (const [k, v] of Object.entries(st.signals).sort()) {
      rows.push(h("dt", { title: k, text: k }), h("dd", { text: fmtSignal(v) }));
    }
    rows.push(h("dt", { text: "samples" }), h("dd", { text: fmtInt(st.samples) }));
    rows.push(h("dt", { text: "samples seen", title: "samples served to training so far (one per sample per batch)" }),
      h("dd", { id: "samples-seen", text: fmtInt(st.samplesSeen) }));
    rows.push(h("dt", { text: "active / discarded" }), h("dd", { text: `${fmtInt(st.active)} / ${fmtInt(st.discarded)}` }));
    rows.push(h("dt", { text: "steps/s" }), h("dd", { text: st.stepsPerSecond.toFixed(1) }));
    signals.replaceChildren(...rows);
  });

  app.connChanged.on((c) => {
    connText.textContent = c === "reconnecting" && app.status === null ? "connecting…" : CONN_TEXT[c];
    paintState(app.status);
    if (c === "reconnecting") {
      banner.hidden = false;
      banner.dataset.kind = "reconnecting";
      banner.textContent = app.status
        ? "Connection to the training process lost — reconnecting with back-off. What you see may be out of date."
        : `Cannot reach the backend at ${app.config.apiBaseUrl || location.origin} — retrying with back-off.`;
    } else if (c === "gone") {
      banner.hidden = false;
      banner.dataset.kind = "gone";
      banner.textContent = "The training process is not answering: it has finished or is restarting. The page keeps trying and reloads the data when it is back.";
    } else {
      banner.hidden = true;
    }
  });
}

function fmtSignal(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(a < 10 ? 4 : 2);
}
