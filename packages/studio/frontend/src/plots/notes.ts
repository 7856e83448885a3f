// Notes on the plots: a step and a short text, per run, kept in the browser's localStorage (the
// backend has no notes API; see the README). Pure: the storage is passed in; unit tested.

export interface PlotNote {
  id: string;
  step: number;
  text: string;
  /** When it was written (ms since the epoch). */
  at: number;
}

export const MAX_NOTE_CHARS = 500;
export const MAX_NOTES = 200;
const PREFIX = "wl-notes:";

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The storage key of a run's notes (the run's name, as the header shows it). */
export const notesKey = (run: string): string => `${PREFIX}${run}`;

/** Note text typed in the menu → its stored form, or an error naming what is accepted. */
export function parseNoteText(text: string): string {
  const t = text.trim();
  if (!t) throw new Error("note: type a text (1..500 characters)");
  if (t.length > MAX_NOTE_CHARS) throw new Error(`note: ${t.length} characters is too long: expected 1..${MAX_NOTE_CHARS}`);
  return t;
}

/** Stored JSON → valid notes sorted by step (anything malformed is dropped, never thrown). */
export function sanitizeNotes(raw: unknown): PlotNote[] {
  if (!Array.isArray(raw)) return [];
  const out: PlotNote[] = [];
  for (const n of raw) {
    if (!n || typeof n !== "object") continue;
    const r = n as Record<string, unknown>;
    if (typeof r.id !== "string" || !r.id || typeof r.text !== "string" || !r.text.trim()) continue;
    if (typeof r.step !== "number" || !Number.isFinite(r.step) || r.step < 0) continue;
    out.push({ id: r.id, step: Math.round(r.step), text: r.text.slice(0, MAX_NOTE_CHARS), at: typeof r.at === "number" ? r.at : 0 });
  }
  return out.sort((a, b) => a.step - b.step || a.at - b.at).slice(-MAX_NOTES);
}

/** One run's notes: read on `setRun`, written through on every change. */
export class NoteStore {
  private run: string | null = null;
  private list: PlotNote[] = [];
  private seq = 0;

  constructor(private readonly storage: StorageLike | null, private readonly now: () => number = Date.now) {}

  setRun(run: string): boolean {
    if (run === this.run) return false;
    this.run = run;
    this.list = [];
    try {
      const raw = this.storage?.getItem(notesKey(run));
      this.list = raw ? sanitizeNotes(JSON.parse(raw)) : [];
    } catch {
      this.list = []; // unreadable storage or JSON: no notes rather than no board
    }
    return true;
  }

  get notes(): readonly PlotNote[] {
    return this.list;
  }

  add(step: number, text: string): PlotNote {
    if (this.run === null) throw new Error("note: the run is not known yet (no status from the server)");
    if (!Number.isFinite(step) || step < 0) throw new Error(`note: step ${step} is not a step: expected an integer >= 0`);
    const at = this.now();
    const note = { id: `${at.toString(36)}-${(this.seq++).toString(36)}`, step: Math.round(step), text: parseNoteText(text), at };
    this.list = sanitizeNotes([...this.list, note]);
    this.save();
    return note;
  }

  remove(id: string): boolean {
    const before = this.list.length;
    this.list = this.list.filter((n) => n.id !== id);
    if (this.list.length === before) return false;
    this.save();
    return true;
  }

  private save(): void {
    if (this.run === null || !this.storage) return;
    if (this.list.length) this.storage.setItem(notesKey(this.run), JSON.stringify(this.list));
    else this.storage.removeItem(notesKey(this.run));
  }
}
