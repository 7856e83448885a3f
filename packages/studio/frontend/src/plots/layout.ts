// Which signals share a card: by default one card per signal; a person may merge cards (or
// every signal matching a search) into one. Kept in localStorage as a list of groups.

export type Groups = string[][];

/** Whether `name` matches a search: every whitespace-separated word is a substring (any case). */
export function matchesSearch(name: string, search: string): boolean {
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const n = name.toLowerCase();
  return words.every((w) => n.includes(w));
}

export class CardLayout {
  groups: Groups = [];

  constructor(saved?: unknown) {
    if (Array.isArray(saved)) {
      const seen = new Set<string>();
      for (const g of saved) {
        if (!Array.isArray(g)) continue;
        const names = g.filter((s): s is string => typeof s === "string" && !seen.has(s));
        names.forEach((s) => seen.add(s));
        if (names.length) this.groups.push(names);
      }
    }
  }

  /** The card id of a group: its first signal. */
  static id(group: string[]): string {
    return group[0]!;
  }

  cardOf(signal: string): string[] | undefined {
    return this.groups.find((g) => g.includes(signal));
  }

  /** Every known signal gets a card (new signals: a card of their own, in name order). */
  sync(signals: string[]): boolean {
    let changed = false;
    for (const s of [...signals].sort()) {
      if (!this.cardOf(s)) {
        this.groups.push([s]);
        changed = true;
      }
    }
    return changed;
  }

  /** Moves every signal of card `from` into card `into`. */
  merge(into: string, from: string): void {
    const a = this.groups.find((g) => CardLayout.id(g) === into);
    const b = this.groups.find((g) => CardLayout.id(g) === from);
    if (!a || !b || a === b) return;
    a.push(...b.filter((s) => !a.includes(s)));
    this.groups = this.groups.filter((g) => g !== b);
  }

  /** One card holding every signal in `signals` (at the place of the first one's card). */
  mergeAll(signals: string[]): string | null {
    const cards = [...new Set(signals.map((s) => this.cardOf(s)).filter((g): g is string[] => !!g))];
    if (cards.length < 2) return cards[0] ? CardLayout.id(cards[0]) : null;
    const into = CardLayout.id(cards[0]!);
    for (const g of cards.slice(1)) this.merge(into, CardLayout.id(g));
    return into;
  }

  /** A merged card back to one card per signal. */
  split(id: string): void {
    const i = this.groups.findIndex((g) => CardLayout.id(g) === id);
    if (i < 0) return;
    const g = this.groups[i]!;
    this.groups.splice(i, 1, ...g.map((s) => [s]));
  }

  /** Cards showing at least one signal matching the search. */
  visible(search: string): Groups {
    return this.groups.filter((g) => g.some((s) => matchesSearch(s, search)));
  }
}
