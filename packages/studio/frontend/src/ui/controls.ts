// Header cockpit: Pause / Resume / Run N steps, Evaluate… (split, tags, progress, cancel, result),
// Save checkpoint + the checkpoint list (Restore moves the branch), the refresh settings popover
// (data / plot auto-refresh, intervals, clear caches) and the progress text next to the step.

import "../cockpit.css";
import { errorText } from "../api/client.js";
import { num, type Status } from "../api/model.js";
import type { Studio } from "../app.js";
import { EVAL_ACTIVE, type EvalView, evalSummary, parseSteps } from "../cockpit.js";
import type { EvaluationStatus } from "../gen/weightslab/v1/experiment_pb.js";
import { clearCaches, parseIntervalSeconds, refresh } from "../refresh.js";
import { byId, fmtInt, h } from "./dom.js";
import { Popover, writeControl } from "./popover.js";
import { toast } from "./toast.js";

const EVAL_POLL_MS = 1000;

export interface Cockpit {
  togglePause(): Promise<void>;
  openRunN(): void;
  openEvaluate(): void;
}

function evalOf(s: EvaluationStatus): EvalView {
  return { state: s.state, progress: s.progress, metrics: { ...s.metrics }, message: s.message };
}

export function setupControls(app: Studio): Cockpit {
  const sandbox = app.config.sandbox;
  const host = byId("cockpit-controls");
  const progress = byId("progress");
  const btn = (id: string, text: string, title: string, write = true): HTMLButtonElement => {
    const b = h("button", { id, type: "button", class: "wl-btn", text });
    return write ? writeControl(b, sandbox, title) : Object.assign(b, { title });
  };

  // ------------------------------------------------------------ pause / resume / run N
  const pause = btn("pause-btn", "❚❚ Pause", "Pause at the next step boundary (Shift+P)");
  const resume = btn("resume-btn", "▶ Resume", "Resume training (Shift+P)");
  const runN = btn("run-n-btn", "Run N steps…", "Run exactly N optimizer steps, then pause (Shift+N)");
  const evalBtn = btn("eval-btn", "Evaluate…", "Run an evaluation pass (Shift+E)", false);
  const save = btn("ckpt-save", "Save checkpoint", "Save a checkpoint of the model, optimizer and data state now");
  const ckptList = btn("ckpt-list-btn", "▾", "Checkpoints: list and restore", false);
  ckptList.classList.add("wl-icon");
  host.append(pause, resume, runN, evalBtn, h("span", { class: "wl-btn-group" }, save, ckptList));

  let busy = false;
  const control = async (what: string, fn: () => Promise<unknown>): Promise<boolean> => {
    if (sandbox || busy) return false;
    busy = true;
    host.classList.add("wl-busy"); // the server answers at the next step boundary: a spinner meanwhile
    host.setAttribute("aria-busy", "true");
    paintButtons(app.status);
    try {
      await fn();
      app.scheduler.trigger("status");
      return true;
    } catch (err) {
      toast("error", `${what} failed: ${errorText(err)}`);
      return false;
    } finally {
      busy = false;
      host.classList.remove("wl-busy");
      host.removeAttribute("aria-busy");
      paintButtons(app.status);
    }
  };
  pause.addEventListener("click", () => void control("pause", () => app.api.pause({})));
  resume.addEventListener("click", () => void control("resume", () => app.api.resume({})));

  const runPop = new Popover(runN, "run-n-pop", "Run N steps");
  const runInput = writeControl(h("input", { id: "run-n-input", type: "text", inputmode: "numeric", value: "100", "aria-label": "Steps to run", autocomplete: "off" }), sandbox);
  const runGo = writeControl(h("button", { id: "run-n-go", type: "submit", class: "wl-btn wl-primary", text: "Run" }), sandbox);
  const runErr = h("div", { id: "run-n-error", class: "wl-inline-error", role: "alert", hidden: true });
  const runForm = h("form", { class: "wl-pop-row" }, h("label", { class: "wl-k", for: "run-n-input", text: "steps" }), runInput, runGo);
  runPop.el.append(h("div", { class: "wl-pop-title", text: "Run exactly N steps, then pause" }), runForm, runErr);
  runForm.addEventListener("submit", (e) => {
    e.preventDefault();
    let n: number;
    try {
      n = parseSteps(runInput.value);
    } catch (err) {
      runErr.hidden = false;
      runErr.textContent = errorText(err);
      return;
    }
    runErr.hidden = true;
    void control("run N steps", async () => {
      try {
        await app.api.resume({ steps: BigInt(n) });
        runPop.close();
        toast("info", `Running ${fmtInt(n)} step${n === 1 ? "" : "s"}, then pausing.`);
      } catch (err) {
        runErr.hidden = false;
        runErr.textContent = errorText(err);
        throw err;
      }
    });
  });

  // ------------------------------------------------------------ evaluation
  const evalPop = new Popover(evalBtn, "eval-pop", "Evaluate");
  const evalSplit = writeControl(h("select", { id: "eval-split", "aria-label": "Split to evaluate" }), sandbox);
  const evalTags = writeControl(h("select", { id: "eval-tags", multiple: true, size: 3, "aria-label": "Only samples with all these tags" }), sandbox);
  const evalStart = writeControl(h("button", { id: "eval-start", type: "button", class: "wl-btn wl-primary", text: "Start" }), sandbox);
  const evalCancel = writeControl(h("button", { id: "eval-cancel", type: "button", class: "wl-btn wl-danger", text: "Cancel" }), sandbox);
  const evalBar = h("progress", { id: "eval-progress", max: 1, value: 0 });
  const evalResult = h("div", { id: "eval-result", class: "wl-eval-result", "data-state": "idle", "aria-live": "polite" });
  const evalErr = h("div", { id: "eval-error", class: "wl-inline-error", role: "alert", hidden: true });
  const evalTagsField = h("label", { class: "wl-field" }, "only samples tagged (all of; none selected = every sample)", evalTags);
  evalPop.el.append(
    h("div", { class: "wl-pop-title", text: "Evaluate the model" }),
    h("label", { class: "wl-field" }, "split", evalSplit),
    evalTagsField,
    h("div", { class: "wl-pop-row" }, evalStart, evalCancel),
    evalBar, evalResult, evalErr,
  );
  const fillEvalChoices = (): void => {
    const keep = evalSplit.value;
    evalSplit.replaceChildren(h("option", { value: "", text: "evaluation loader (default)" }),
      ...app.counts.map((s) => h("option", { value: s.name, text: s.name })));
    evalSplit.value = [...evalSplit.options].some((o) => o.value === keep) ? keep : "";
    const chosen = new Set([...evalTags.selectedOptions].map((o) => o.value));
    const opts: HTMLOptionElement[] = [];
    for (const t of app.tags) {
      if (t.categorical) for (const v of t.values) opts.push(h("option", { value: `${t.name}=${v.value}`, text: `${t.name}=${v.value} (${v.count})`, selected: chosen.has(`${t.name}=${v.value}`) }));
      else opts.push(h("option", { value: t.name, text: `${t.name} (${t.count})`, selected: chosen.has(t.name) }));
    }
    evalTags.replaceChildren(...opts);
    evalTagsField.hidden = opts.length === 0; // no tag yet: nothing to restrict to
  };
  evalPop.whenOpened(() => {
    fillEvalChoices();
    app.scheduler.trigger("evaluation");
  });
  // Opened before the split counts or tags arrived (a slow first read): fill in when they do.
  app.countsChanged.on(() => { if (evalPop.isOpen()) fillEvalChoices(); });
  app.tagsChanged.on(() => { if (evalPop.isOpen()) fillEvalChoices(); });
  let evalState: EvalView = { state: "idle", progress: 0, metrics: {}, message: "" };
  const paintEval = (e: EvalView): void => {
    evalState = e;
    const active = EVAL_ACTIVE.has(e.state);
    evalBar.value = e.progress;
    evalBar.hidden = !active && e.state !== "done";
    evalResult.dataset.state = e.state || "idle";
    evalResult.textContent = evalSummary(e);
    if (!sandbox) {
      evalStart.disabled = active;
      evalCancel.disabled = !active;
    }
    paintProgress(app.status);
  };
  paintEval(evalState);
  let lastEvalState = "";
  app.scheduler.poll({
    kind: "evaluation",
    intervalMs: EVAL_POLL_MS,
    paused: true,
    run: async () => {
      const e = evalOf(await app.api.getEvaluationStatus({}));
      paintEval(e);
      if (!EVAL_ACTIVE.has(e.state)) {
        app.scheduler.pause("evaluation"); // 1 s only while a pass runs
        if (EVAL_ACTIVE.has(lastEvalState) && e.state === "done") toast("success", `Evaluation ${evalSummary(e)}`);
        else if (EVAL_ACTIVE.has(lastEvalState) && e.state !== "done") toast("error", `Evaluation ${evalSummary(e)}`);
      }
      lastEvalState = e.state;
    },
    onError: () => app.scheduler.pause("evaluation"),
  });
  const watchEval = (): void => {
    app.scheduler.resume("evaluation");
    app.scheduler.trigger("evaluation");
  };
  evalStart.addEventListener("click", async () => {
    evalErr.hidden = true;
    const tags = [...evalTags.selectedOptions].map((o) => o.value);
    try {
      const s = await app.api.startEvaluation({ split: evalSplit.value, tags });
      lastEvalState = "running";
      paintEval(evalOf(s));
      watchEval();
    } catch (err) {
      evalErr.hidden = false;
      evalErr.textContent = errorText(err);
    }
  });
  evalCancel.addEventListener("click", async () => {
    try {
      paintEval(evalOf(await app.api.cancelEvaluation({})));
      watchEval();
    } catch (err) {
      evalErr.hidden = false;
      evalErr.textContent = errorText(err);
    }
  });

  // ------------------------------------------------------------ checkpoints
  save.addEventListener("click", () => void control("save checkpoint", async () => {
    const c = await app.api.saveCheckpoint({ note: "" });
    toast("success", `Saved checkpoint ${c.id} at step ${fmtInt(num(c.step))} (branch ${c.branch.slice(0, 12)})`);
    if (ckptPop.isOpen()) void loadCheckpoints();
  }));
  const ckptPop = new Popover(ckptList, "ckpt-pop", "Checkpoints");
  const ckptRows = h("div", { id: "ckpt-rows", class: "wl-ckpt-rows" });
  const ckptErr = h("div", { id: "ckpt-error", class: "wl-inline-error", role: "alert", hidden: true });
  ckptPop.el.append(h("div", { class: "wl-pop-title", text: "Checkpoints (Restore pauses training and continues on a new branch)" }), ckptRows, ckptErr);
  const loadCheckpoints = async (): Promise<void> => {
    try {
      const res = await app.scheduler.run("checkpoints", () => app.api.listCheckpoints({}));
      const list = [...res.checkpoints].sort((a, b) => Number(b.step - a.step) || b.createdAt.localeCompare(a.createdAt));
      ckptErr.hidden = true;
      if (!list.length) {
        ckptRows.replaceChildren(h("div", { class: "wl-muted", text: "no checkpoint yet — Save checkpoint makes one" }));
        return;
      }
      ckptRows.replaceChildren(...list.map((c) => {
        const restore = writeControl(h("button", { type: "button", class: "wl-btn wl-small", "data-ckpt-id": c.id, text: "Restore" }), sandbox,
          `Restore step ${num(c.step)}: training pauses and continues on a new branch`);
        restore.addEventListener("click", () => void restoreCheckpoint(c.id));
        const current = app.status?.branch === c.branch;
        return h("div", { class: "wl-ckpt", "data-ckpt-id": c.id, "data-step": num(c.step) },
          h("span", { class: "wl-num", text: `step ${fmtInt(num(c.step))}` }),
          h("span", { class: `wl-mono${current ? " wl-current" : ""}`, title: `branch ${c.branch}${c.parentBranch ? ` (from ${c.parentBranch})` : ""}`, text: c.branch.slice(0, 10) }),
          h("span", { class: "wl-muted", title: c.createdAt, text: [c.reason, c.note].filter(Boolean).join(" · ") }),
          restore);
      }));
    } catch (err) {
      ckptErr.hidden = false;
      ckptErr.textContent = errorText(err);
    }
  };
  ckptPop.whenOpened(() => void loadCheckpoints());
  const restoreCheckpoint = async (id: string): Promise<void> => {
    await control("restore", async () => {
      if (app.status?.state === "running") await app.api.pause({}); // a restore needs a paused loop
      const c = await app.api.restoreCheckpoint({ target: { case: "checkpointId", value: id } });
      toast("success", `Restored step ${fmtInt(num(c.step))}: now on branch ${c.branch.slice(0, 12)} (from ${c.parentBranch.slice(0, 12)}); training is paused — Resume to go on.`);
    });
    void loadCheckpoints();
  };

  // ------------------------------------------------------------ refresh settings
  const refreshBtn = byId("refresh-btn");
  const rfPop = new Popover(refreshBtn, "refresh-pop", "Refresh settings");
  const rf = refresh.get();
  const dataAuto = h("input", { id: "rf-data-auto", type: "checkbox", checked: rf.dataAuto });
  const dataInt = h("input", { id: "rf-data-int", type: "text", inputmode: "decimal", value: String(rf.dataIntervalMs / 1000), "aria-label": "Data refresh interval (seconds)" });
  const plotsAuto = h("input", { id: "rf-plots-auto", type: "checkbox", checked: rf.plotsAuto });
  const plotsInt = h("input", { id: "rf-plots-int", type: "text", inputmode: "decimal", value: String(rf.plotsIntervalMs / 1000), "aria-label": "Plots refresh interval (seconds)" });
  const rfErr = h("div", { id: "rf-error", class: "wl-inline-error", role: "alert", hidden: true });
  const clearBtn = byId("clear-cache");
  rfPop.el.append(
    h("div", { class: "wl-pop-title", text: "Auto-refresh" }),
    h("div", { class: "wl-pop-row" }, h("label", { class: "wl-check" }, dataAuto, "data rows every"), dataInt, h("span", { class: "wl-k", text: "s" })),
    h("div", { class: "wl-pop-row" }, h("label", { class: "wl-check" }, plotsAuto, "plots every"), plotsInt, h("span", { class: "wl-k", text: "s" })),
    rfErr, clearBtn,
  );
  const applyRefresh = (): void => {
    try {
      refresh.set({
        dataAuto: dataAuto.checked, plotsAuto: plotsAuto.checked,
        dataIntervalMs: parseIntervalSeconds("data interval", dataInt.value),
        plotsIntervalMs: parseIntervalSeconds("plots interval", plotsInt.value),
      });
      rfErr.hidden = true;
    } catch (err) {
      rfErr.hidden = false;
      rfErr.textContent = errorText(err);
    }
  };
  for (const el of [dataAuto, plotsAuto]) el.addEventListener("change", applyRefresh);
  for (const el of [dataInt, plotsInt]) el.addEventListener("change", applyRefresh);
  refresh.subscribe((s) => {
    refreshBtn.classList.toggle("wl-off", !s.dataAuto || !s.plotsAuto);
    refreshBtn.title = `Refresh settings — data ${s.dataAuto ? `every ${s.dataIntervalMs / 1000} s` : "off"}, plots ${s.plotsAuto ? `every ${s.plotsIntervalMs / 1000} s` : "off"}`;
  });
  clearBtn.addEventListener("click", () => {
    clearCaches.emit();
    rfPop.close();
  });

  // ------------------------------------------------------------ painting the state
  function paintButtons(st: Status | null): void {
    if (sandbox) return;
    const live = app.conn === "live" && st !== null && st.state !== "unknown";
    pause.disabled = busy || !live || st?.state === "paused";
    resume.disabled = busy || !live || st?.state === "running";
    runN.disabled = busy || !live;
    save.disabled = busy || app.conn !== "live";
  }
  function paintProgress(st: Status | null): void {
    const parts: string[] = [];
    if (st?.stepsLeft !== null && st?.stepsLeft !== undefined) parts.push(`run N: ${fmtInt(st.stepsLeft)} left`);
    if (EVAL_ACTIVE.has(evalState.state)) parts.push(`eval ${Math.round(evalState.progress * 100)}%`);
    progress.textContent = parts.join(" · ");
    progress.hidden = parts.length === 0;
  }
  app.statusChanged.on((st) => {
    paintButtons(st);
    paintProgress(st);
    // An evaluation started elsewhere (CLI, agent, another tab) is followed too.
    if (st.state === "evaluating" && !EVAL_ACTIVE.has(evalState.state)) watchEval();
  });
  app.connChanged.on(() => paintButtons(app.status));
  paintButtons(null);

  const togglePause = async (): Promise<void> => {
    const st = app.status;
    if (!st || sandbox) return;
    if (st.state === "running" || st.state === "evaluating") await control("pause", () => app.api.pause({}));
    else await control("resume", () => app.api.resume({}));
  };
  return {
    togglePause,
    openRunN: () => {
      if (!runN.disabled) runPop.open();
    },
    openEvaluate: () => evalPop.open(),
  };
}
