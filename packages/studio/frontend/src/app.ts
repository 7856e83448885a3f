// The page's state and its traffic: one Scheduler for every repeated request, the connection
// state machine, the current view (chips + query + sort), counts, tags and writes.

import { type Api, Code, errorCode, errorText, isBackoffError, isNetworkError, isUnauthenticated } from "./api/client.js";
import { num, splitKey, statusOf, type Status } from "./api/model.js";
import type { StudioConfig } from "./config.js";
import { FullResStore } from "./data/fullres.js";
import { ThumbnailStore } from "./data/thumbs.js";
import { type SortSpec, ViewModel } from "./data/view.js";
import { Emitter } from "./events.js";
import { EditAction, TagKind } from "./gen/weightslab/v1/experiment_pb.js";
import type { RelabelKind } from "./labels.js";
import { type Chip, chipText, composeQuery, hasFilter } from "./query.js";
import { refresh } from "./refresh.js";
import { Scheduler } from "./scheduler.js";
import { Selection } from "./selection.js";

export type ConnState = "connecting" | "live" | "reconnecting" | "unauthorized" | "gone";

export interface SplitCount {
  name: string;
  total: number;
  active: number;
  discarded: number;
}

export interface TagSummary {
  name: string;
  categorical: boolean;
  count: number;
  values: Array<{ value: string; count: number }>;
}

export type EditKind = "tag" | "untag" | "discard" | "restore";

export interface EditResult {
  matched: number;
  changed: number;
}

export interface RelabelResult extends EditResult {
  /** accept: matched samples the run has no suggestion for yet (left as they are). */
  withoutSuggestion: number;
}

/** Unreachable for this long after having been live: the training process is taken as gone. */
export const GONE_AFTER_MS = 15_000;
export const STATUS_INTERVAL_MS = 1000;
const HIST_REFRESH_MS = 8000;

export class Studio {
  readonly scheduler: Scheduler;
  readonly view: ViewModel;
  readonly thumbs: ThumbnailStore;
  readonly fullres: FullResStore;
  readonly selection = new Selection();

  readonly statusChanged = new Emitter<Status>();
  readonly connChanged = new Emitter<ConnState>();
  readonly queryChanged = new Emitter<void>();
  readonly queryError = new Emitter<string | null>();
  readonly countsChanged = new Emitter<SplitCount[]>();
  readonly tagsChanged = new Emitter<TagSummary[]>();
  /** A write landed: views refresh. */
  readonly edited = new Emitter<void>();
  /** Rows of the visible range should be re-read (training moved on). */
  readonly stepMoved = new Emitter<number>();

  status: Status | null = null;
  conn: ConnState = "connecting";
  chips: Chip[] = [];
  raw = "";
  sort: SortSpec | null = null;
  counts: SplitCount[] = [];
  tags: TagSummary[] = [];
  private unreachableSince: number | null = null;
  private wasLive = false;
  private lastRowsRefresh = 0;
  private lastHistRefresh = 0;
  private lastStep = -1;
  private lastDiscarded = -1;
  private lastSamples = -1;
  private countsStale = false; // the last split counts read failed

  constructor(
    readonly config: StudioConfig,
    readonly api: Api,
    private readonly onUnauthorized: (reason: string) => void,
  ) {
    this.scheduler = new Scheduler({
      isBackoffError,
      // A restarted backend is found again within ~10 s.
      maxBackoffMs: 10_000,
      visibility: { hidden: () => document.visibilityState === "hidden", onChange: (f) => document.addEventListener("visibilitychange", f) },
    });
    this.view = new ViewModel(api, this.scheduler);
    this.thumbs = new ThumbnailStore(api, this.scheduler, config.maxImageCacheSize ?? 400, config.gridCacheMaxMb);
    this.fullres = new FullResStore(api, this.scheduler, config.modalCacheMaxMb);
  }

  start(): void {
    this.scheduler.poll({
      kind: "status",
      intervalMs: STATUS_INTERVAL_MS,
      run: () => this.pollStatus(),
      onError: (err) => this.onStatusError(err),
    });
  }

  /** No token, or the server refused it: stop polling until a token is given. */
  markUnauthorized(): void {
    this.scheduler.pause("status");
    this.setConn("unauthorized");
  }

  /** A new token was given: poll again at once. */
  reconnect(): void {
    this.setConn("connecting");
    this.scheduler.resume("status");
    this.scheduler.trigger("status");
  }

  private setConn(state: ConnState): void {
    if (state === this.conn) return;
    this.conn = state;
    document.body.dataset.conn = state;
    this.connChanged.emit(state);
  }

  private async pollStatus(): Promise<void> {
    const res = await this.api.getStatus({});
    const st = statusOf(res);
    const prev = this.status;
    this.status = st;
    const wasDown = this.conn !== "live";
    const restarted = prev !== null && (prev.name !== st.name || prev.branch !== st.branch || st.step < prev.step);
    this.unreachableSince = null;
    this.setConn("live");
    this.statusChanged.emit(st);
    if (!this.wasLive || (wasDown && this.wasLive) || restarted) {
      // First contact, back after an outage, or another run/branch: everything is re-read.
      this.wasLive = true;
      this.refreshAll(restarted);
    } else {
      if (this.countsStale || st.discarded !== this.lastDiscarded || st.samples !== this.lastSamples) void this.loadCounts();
      const now = Date.now();
      const auto = refresh.get(); // header → refresh settings
      if (auto.dataAuto && st.step !== this.lastStep && now - this.lastRowsRefresh > auto.dataIntervalMs) {
        this.lastRowsRefresh = now;
        this.stepMoved.emit(st.step);
        if (now - this.lastHistRefresh > HIST_REFRESH_MS) {
          this.lastHistRefresh = now;
          this.queryChanged.emit(); // histogram values move with training
        }
      }
    }
    this.lastStep = st.step;
    this.lastDiscarded = st.discarded;
    this.lastSamples = st.samples;
  }

  private onStatusError(err: unknown): void {
    if (isUnauthenticated(err)) {
      this.markUnauthorized();
      this.onUnauthorized(errorText(err));
      return;
    }
    if (isBackoffError(err) || isNetworkError(err)) {
      const now = Date.now();
      this.unreachableSince ??= now;
      const gone = this.wasLive && now - this.unreachableSince >= GONE_AFTER_MS;
      this.setConn(gone ? "gone" : "reconnecting");
      return;
    }
    // An answer, but an error one (e.g. INTERNAL): the server is there.
    this.setConn("live");
  }

  refreshAll(clearImages = false): void {
    if (clearImages) {
      this.thumbs.clear();
      this.fullres.clear();
    }
    void this.loadCounts();
    void this.loadTags();
    if (!this.view.loaded) void this.applyView();
    else {
      void this.view.reload();
      this.queryChanged.emit();
    }
  }

  // ---------------------------------------------------------------- view
  chipTexts(): string[] {
    return this.chips.map((c) => chipText(c, this.view.columns.find((col) => col.name === c.column)?.kind ?? "unknown"));
  }

  queryText(): string {
    return composeQuery(this.chipTexts(), this.raw);
  }

  /** Whether "apply to all matching" can be sent (an edit by query needs a filter). */
  canEditByQuery(): boolean {
    return hasFilter(this.queryText());
  }

  async applyView(): Promise<boolean> {
    let text: string;
    try {
      text = this.queryText();
    } catch (err) {
      this.queryError.emit(errorText(err));
      return false;
    }
    try {
      await this.view.set(text, this.sort);
      this.queryError.emit(null);
      this.selection.clear();
      this.queryChanged.emit();
      return true;
    } catch (err) {
      if (errorCode(err) === Code.InvalidArgument) this.queryError.emit(errorText(err));
      else if (isUnauthenticated(err)) {
        this.markUnauthorized();
        this.onUnauthorized(errorText(err));
      }
      else this.queryError.emit(`${errorText(err)}`);
      return false;
    }
  }

  // ---------------------------------------------------------------- counts and tags
  async loadCounts(): Promise<void> {
    try {
      const res = await this.scheduler.run("splits", () => this.api.listSplits({}));
      this.counts = res.splits.map((s) => ({ name: s.name, total: num(s.samples), active: num(s.active), discarded: num(s.discarded) }));
      this.countsStale = false;
      this.countsChanged.emit(this.counts);
    } catch {
      // The status poll reports connectivity; the next poll asks again (a paused run changes
      // nothing that would, and its split list stayed empty).
      this.countsStale = true;
    }
  }

  async loadTags(): Promise<void> {
    try {
      const res = await this.scheduler.run("tags", () => this.api.listTags({}));
      this.tags = res.tags.map((t) => ({
        name: t.name,
        categorical: t.kind === TagKind.CATEGORICAL,
        count: num(t.count),
        values: t.values.map((v) => ({ value: v.value, count: num(v.count) })),
      }));
      this.tagsChanged.emit(this.tags);
    } catch {
      /* an older server without ListTags: the tag card stays empty */
    }
  }

  // ---------------------------------------------------------------- writes
  /**
   * Tags / untags / discards / restores the selection (one call per split), or — `allMatching` —
   * every row of the current query in ONE edit by query. `tag` may be `name=value` (categorical).
   */
  async edit(kind: EditKind, tag: string, allMatching: boolean): Promise<EditResult> {
    let action: EditAction;
    let tagName = "";
    let value = "";
    if (kind === "tag" || kind === "untag") {
      const t = tag.trim();
      if (!t) throw new Error("tag: type a tag name (or name=value for a categorical tag)");
      const eq = t.indexOf("=");
      if (eq > 0) {
        tagName = t.slice(0, eq).trim();
        value = t.slice(eq + 1).trim();
        if (kind === "tag" && !value) throw new Error(`tag: ${JSON.stringify(t)} has no value after '='`);
        action = kind === "tag" ? EditAction.SET_CATEGORY : EditAction.CLEAR_CATEGORY;
        if (kind === "untag") value = "";
      } else {
        tagName = t;
        action = kind === "tag" ? EditAction.TAG : EditAction.UNTAG;
      }
    } else {
      action = kind === "discard" ? EditAction.DISCARD : EditAction.RESTORE;
    }
    const total: EditResult = { matched: 0, changed: 0 };
    if (allMatching) {
      const text = this.queryText();
      const res = await this.api.editSamples({ action, target: { case: "query", value: { kind: { case: "text", value: text } } }, tag: tagName, value });
      total.matched += num(res.matched);
      total.changed += num(res.changed);
    } else {
      for (const [split, ids] of await this.selectedBySplit()) {
        const res = await this.api.editSamples({ action, target: { case: "ids", value: { ids } }, split, tag: tagName, value });
        total.matched += num(res.matched);
        total.changed += num(res.changed);
      }
    }
    await this.afterEdit();
    return total;
  }

  /** The selected sample ids per split; rows lassoed before they were loaded are read through the view now. */
  private async selectedBySplit(): Promise<Map<string, string[]>> {
    await this.selection.resolve((spans) => this.view.keysAt(spans));
    const bySplit = new Map<string, string[]>();
    for (const key of this.selection.all()) {
      const { split, id } = splitKey(key);
      const ids = bySplit.get(split) ?? [];
      ids.push(id);
      bySplit.set(split, ids);
    }
    if (!bySplit.size) throw new Error("nothing selected");
    return bySplit;
  }

  /**
   * Label corrections on the selection (one EditSamples call per split): relabel as `label`,
   * accept each sample's suggested label, or revert to the original label.
   */
  async relabel(kind: RelabelKind, label: number | null = null): Promise<RelabelResult> {
    const action = kind === "relabel" ? EditAction.RELABEL : kind === "accept" ? EditAction.RELABEL_TO_SUGGESTION : EditAction.REVERT_LABEL;
    if (kind === "relabel" && label === null) throw new Error("label: type a class index (an integer >= 0)");
    const bySplit = await this.selectedBySplit();
    const total: RelabelResult = { matched: 0, changed: 0, withoutSuggestion: 0 };
    for (const [split, ids] of bySplit) {
      const res = await this.api.editSamples({
        action, target: { case: "ids", value: { ids } }, split,
        ...(kind === "relabel" ? { label: BigInt(label!) } : {}),
      });
      total.matched += num(res.matched);
      total.changed += num(res.changed);
      total.withoutSuggestion += num(res.withoutSuggestion);
    }
    await this.afterEdit();
    return total;
  }

  /** A write landed (here or through the agent): counts, tags and the views are re-read. */
  async afterEdit(): Promise<void> {
    await Promise.all([this.loadCounts(), this.loadTags()]);
    this.edited.emit();
    this.queryChanged.emit();
  }
}
