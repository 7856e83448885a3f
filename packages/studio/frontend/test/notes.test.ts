import { describe, expect, it } from "vitest";
import { MAX_NOTE_CHARS, NoteStore, notesKey, parseNoteText, sanitizeNotes } from "../src/plots/notes.js";

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(k: string): string | null {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.items.set(k, v);
  }
  removeItem(k: string): void {
    this.items.delete(k);
  }
}

describe("plot notes", () => {
  it("are kept per run and read back by a new store (a reload)", () => {
    const storage = new MemoryStorage();
    let t = 1000;
    const a = new NoteStore(storage, () => t++);
    a.setRun("run-a");
    const n = a.add(42, "  lr lowered here ");
    a.add(7, "warm-up done");
    expect(a.notes.map((x) => [x.step, x.text])).toEqual([[7, "warm-up done"], [42, "lr lowered here"]]);
    const b = new NoteStore(storage);
    b.setRun("run-a");
    expect(b.notes.map((x) => x.id)).toContain(n.id);
    b.setRun("run-b");
    expect(b.notes).toEqual([]);
    expect(b.remove("nope")).toBe(false);
    b.setRun("run-a");
    expect(b.remove(n.id)).toBe(true);
    expect(b.notes.map((x) => x.step)).toEqual([7]);
    b.remove(b.notes[0]!.id);
    expect(storage.getItem(notesKey("run-a"))).toBeNull(); // no empty list left behind
  });
  it("refuses empty or too long text and a note before the run is known", () => {
    expect(() => parseNoteText("  ")).toThrow(/note: type a text/);
    expect(() => parseNoteText("x".repeat(MAX_NOTE_CHARS + 1))).toThrow(/too long: expected 1\.\.500/);
    expect(() => new NoteStore(new MemoryStorage()).add(1, "x")).toThrow(/run is not known/);
  });
  it("drops malformed stored notes", () => {
    expect(sanitizeNotes("nope")).toEqual([]);
    expect(sanitizeNotes([{ id: "a", step: 3, text: "ok", at: 1 }, { id: "b", step: -1, text: "x" }, { step: 2, text: "no id" }, null]))
      .toEqual([{ id: "a", step: 3, text: "ok", at: 1 }]);
    const s = new MemoryStorage();
    s.setItem(notesKey("r"), "{broken");
    const store = new NoteStore(s);
    store.setRun("r");
    expect(store.notes).toEqual([]);
  });
});
