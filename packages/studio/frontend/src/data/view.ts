// The current view: query text + sort, its total and its rows, fetched in pages on demand.
// Every QuerySamples call goes through the scheduler's "rows" kind (one in flight, latest wins),
// except refreshes of loaded rows ("rows-refresh"): a refresh after an edit must never be the
// queued request that a prefetch supersedes, or the grid would keep showing the old tags.

import type { Api } from "../api/client.js";
import { pageOf, sampleKey, type ColumnInfo, type Row } from "../api/model.js";
import { Emitter } from "../events.js";
import type { Scheduler } from "../scheduler.js";
import { Superseded } from "../scheduler.js";

export const PAGE_SIZE = 200;
const MAX_FETCH = 10_000;

export interface SortSpec {
  column: string;
  descending: boolean;
}

export type ViewEvent =
  | { type: "reset" }
  | { type: "rows"; start: number; end: number }
  | { type: "error"; error: unknown }
  | { type: "loaded" };

export class ViewModel {
  readonly events = new Emitter<ViewEvent>();
  query = "";
  /** null: the query's own sort (if any). */
  sort: SortSpec | null = null;
  total = 0;
  loaded = false;
  columns: ColumnInfo[] = [];
  private pages = new Map<number, Row[]>();
  private pending = new Set<number>();
  private generation = 0;
  /** Order of issue of fetches; per page, the issue number of the rows it holds. */
  private issued = 0;
  private pageIssue = new Map<number, number>();
  /** set() calls waiting for their first page: paging the old view meanwhile is pointless. */
  private switching = 0;

  constructor(private readonly api: Api, private readonly scheduler: Scheduler) {}

  columnIndex(name: string): number {
    return this.columns.findIndex((c) => c.name === name);
  }

  row(i: number): Row | undefined {
    return this.pages.get(Math.floor(i / PAGE_SIZE))?.[i % PAGE_SIZE];
  }

  value(i: number, column: string): Row["values"][number] | undefined {
    const c = this.columnIndex(column);
    const r = this.row(i);
    return c < 0 || !r ? undefined : r.values[c];
  }

  /** Sets the query/sort and loads the first page (errors go to the "error" event). */
  async set(query: string, sort: SortSpec | null): Promise<void> {
    // The current view stays until the new one answers: a query with a syntax error leaves it.
    this.switching++;
    try {
      await this.fetch(0, PAGE_SIZE, true, false, { query, sort });
    } finally {
      this.switching--;
    }
  }

  /** Drops every page and reloads the given range (after an edit, a reconnect). */
  async reload(start = 0, end = PAGE_SIZE): Promise<void> {
    this.generation++;
    this.pages.clear();
    this.pending.clear();
    this.pageIssue.clear();
    const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
    await this.fetch(first, Math.max(PAGE_SIZE, end - first), true);
  }

  /** Makes sure rows [start, end) are loaded (missing pages in one request). */
  async ensure(start: number, end: number): Promise<void> {
    if (!this.loaded || this.switching) return;
    const lo = Math.max(0, Math.floor(start / PAGE_SIZE));
    const hi = Math.min(Math.ceil(Math.min(end, this.total) / PAGE_SIZE), lo + MAX_FETCH / PAGE_SIZE);
    let first = -1;
    let last = -1;
    for (let p = lo; p < hi; p++) {
      if (this.pages.has(p) || this.pending.has(p)) continue;
      if (first < 0) first = p;
      last = p;
    }
    if (first < 0) return;
    await this.fetch(first * PAGE_SIZE, (last - first + 1) * PAGE_SIZE, false);
  }

  /** Reloads the rows of [start, end) in place (values move while training runs). */
  async refresh(start: number, end: number): Promise<void> {
    if (!this.loaded || this.switching) return;
    const lo = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
    const hi = Math.min(Math.ceil(end / PAGE_SIZE) * PAGE_SIZE, lo + MAX_FETCH);
    if (hi <= lo) return;
    await this.fetch(lo, hi - lo, false, true);
  }

  private async fetch(
    offset: number,
    limit: number,
    reset: boolean,
    replace = false,
    next?: { query: string; sort: SortSpec | null },
  ): Promise<void> {
    if (next) this.generation++;
    const gen = this.generation;
    const issue = ++this.issued;
    const query = next ? next.query : this.query;
    const sort = next ? next.sort : this.sort;
    const pagesAsked: number[] = [];
    for (let p = offset / PAGE_SIZE; p < (offset + limit) / PAGE_SIZE; p++) pagesAsked.push(p);
    if (!replace && !next) pagesAsked.forEach((p) => this.pending.add(p));
    const request = {
      query: query ? { kind: { case: "text" as const, value: query } } : undefined,
      sort: sort ? [{ column: sort.column, descending: sort.descending }] : [],
      page: { offset: BigInt(offset), limit },
      columns: [],
    };
    try {
      const res = await this.scheduler.run(replace ? "rows-refresh" : "rows", () => this.api.querySamples(request));
      if (gen !== this.generation) return;
      const page = pageOf(res);
      if (next) {
        this.query = next.query;
        this.sort = next.sort;
        this.pages.clear();
        this.pending.clear();
        this.pageIssue.clear();
      }
      const totalChanged = page.total !== this.total;
      this.total = page.total;
      this.columns = page.columns;
      pagesAsked.forEach((p, k) => {
        this.pending.delete(p);
        // Answers may land out of order (two kinds): rows asked later (a refresh) win.
        if ((this.pageIssue.get(p) ?? 0) > issue) return;
        this.pageIssue.set(p, issue);
        const rows = page.rows.slice(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
        if (rows.length) this.pages.set(p, rows);
        else this.pages.delete(p);
      });
      if (reset || !this.loaded) {
        this.loaded = true;
        this.events.emit({ type: "reset" });
        this.events.emit({ type: "loaded" });
      } else if (totalChanged) {
        this.events.emit({ type: "reset" });
      } else {
        this.events.emit({ type: "rows", start: offset, end: offset + limit });
      }
    } catch (err) {
      pagesAsked.forEach((p) => this.pending.delete(p));
      if (err instanceof Superseded || gen !== this.generation) return;
      this.events.emit({ type: "error", error: err });
      if (reset) throw err;
    }
  }

  /**
   * The keys (split + id) of the rows at the given positions now: from the loaded pages, the
   * missing runs asked for in one request each (a lasso over rows not loaded yet).
   */
  async keysAt(spans: ReadonlyArray<readonly [number, number]>): Promise<string[]> {
    const out: string[] = [];
    const request = (offset: number, limit: number) => ({
      query: this.query ? { kind: { case: "text" as const, value: this.query } } : undefined,
      sort: this.sort ? [{ column: this.sort.column, descending: this.sort.descending }] : [],
      page: { offset: BigInt(offset), limit },
      columns: [],
    });
    for (const [s, e] of spans) {
      const end = Math.min(e, this.total);
      let i = Math.max(0, s);
      while (i < end) {
        const r = this.row(i);
        if (r) {
          out.push(sampleKey(r.split, r.id));
          i++;
          continue;
        }
        let j = i;
        while (j < end && !this.row(j) && j - i < MAX_FETCH) j++;
        const res = await this.scheduler.run("rows-resolve", () => this.api.querySamples(request(i, j - i)));
        for (const row of pageOf(res).rows) out.push(sampleKey(row.split, row.id));
        i = j;
      }
    }
    return out;
  }

  /** The loaded rows of [start, end) with their positions. */
  loadedRows(start: number, end: number): Array<[number, Row]> {
    const out: Array<[number, Row]> = [];
    for (let i = Math.max(0, start); i < Math.min(end, this.total); i++) {
      const r = this.row(i);
      if (r) out.push([i, r]);
    }
    return out;
  }
}
