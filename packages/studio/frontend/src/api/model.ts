// Plain shapes the UI works with: int64 fields (bigint) become numbers here, once.

import {
  ColumnType,
  type GetStatusResponse,
  type QuerySamplesResponse,
  type SampleRow,
  TrainingState,
  type Value,
} from "../gen/weightslab/v1/experiment_pb.js";
import type { ColumnKind } from "../query.js";

export type Cell = number | string | boolean | null;

export interface ColumnInfo {
  name: string;
  kind: ColumnKind;
}

export interface Row {
  id: string;
  split: string;
  discarded: boolean;
  values: Cell[];
  tags: string[];
  categories: Record<string, string>;
}

export type TrainState = "running" | "paused" | "evaluating" | "unknown";

export interface Status {
  name: string;
  state: TrainState;
  step: number;
  branch: string;
  samples: number;
  /** Samples served to training so far (one per sample per batch); 0 from an older server. */
  samplesSeen: number;
  active: number;
  discarded: number;
  splits: Record<string, number>;
  signals: Record<string, number>;
  stepsPerSecond: number;
  stepsLeft: number | null;
  waiting: boolean;
  serverVersion: string;
}

export const num = (v: bigint | number): number => (typeof v === "bigint" ? Number(v) : v);

export function cellOf(v: Value | undefined): Cell {
  if (!v) return null;
  switch (v.kind.case) {
    case "number":
      return v.kind.value;
    case "int":
      return Number(v.kind.value);
    case "bool":
      return v.kind.value;
    case "string":
      return v.kind.value;
    case "json":
      return v.kind.value;
    default:
      return null;
  }
}

export function columnKind(t: ColumnType): ColumnKind {
  switch (t) {
    case ColumnType.NUMBER:
      return "number";
    case ColumnType.STRING:
      return "string";
    case ColumnType.BOOL:
      return "bool";
    default:
      return "unknown";
  }
}

export function rowOf(r: SampleRow): Row {
  return {
    id: r.sampleId,
    split: r.split,
    discarded: r.discarded,
    values: r.values.map(cellOf),
    tags: [...r.tags],
    categories: { ...r.categories },
  };
}

export function pageOf(res: QuerySamplesResponse): { total: number; columns: ColumnInfo[]; rows: Row[]; offset: number } {
  return {
    total: num(res.total),
    offset: num(res.offset),
    columns: res.columns.map((c) => ({ name: c.name, kind: columnKind(c.type) })),
    rows: res.rows.map(rowOf),
  };
}

export function stateOf(s: TrainingState): TrainState {
  switch (s) {
    case TrainingState.RUNNING:
      return "running";
    case TrainingState.PAUSED:
      return "paused";
    case TrainingState.EVALUATING:
      return "evaluating";
    default:
      return "unknown";
  }
}

export function statusOf(s: GetStatusResponse): Status {
  const splits: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.splits)) splits[k] = num(v);
  return {
    name: s.name,
    state: stateOf(s.state),
    step: num(s.step),
    branch: s.branch,
    samples: num(s.samples),
    samplesSeen: num(s.samplesSeen),
    active: num(s.active),
    discarded: num(s.discarded),
    splits,
    signals: { ...s.signals },
    stepsPerSecond: s.stepsPerSecond,
    stepsLeft: s.stepsLeft === undefined ? null : num(s.stepsLeft),
    waiting: s.waiting,
    serverVersion: s.serverVersion,
  };
}

export const sampleKey = (split: string, id: string): string => `${split}\u0000${id}`;

export function splitKey(key: string): { split: string; id: string } {
  const i = key.indexOf("\u0000");
  return { split: key.slice(0, i), id: key.slice(i + 1) };
}

/** Short display of a cell value. */
export function formatCell(v: Cell): string {
  if (v === null) return "—";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return v.toFixed(a < 1 ? 3 : a < 100 ? 2 : 1);
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return v;
}
