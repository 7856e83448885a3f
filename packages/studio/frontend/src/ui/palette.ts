// Split colours: the same split always gets the same swatch.

const SWATCHES = ["--split-0", "--split-1", "--split-2", "--split-3"];
const KNOWN: Record<string, number> = { train: 0, val: 1, validation: 1, test: 2, eval: 1 };

export function splitIndex(split: string, all: string[]): number {
  if (split in KNOWN) return KNOWN[split]!;
  const i = all.indexOf(split);
  return (i < 0 ? 3 : i) % SWATCHES.length;
}

export function splitColor(split: string, all: string[]): string {
  return `var(${SWATCHES[splitIndex(split, all)]})`;
}

export function splitColorValue(split: string, all: string[]): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(SWATCHES[splitIndex(split, all)]!).trim();
  return v || "#5b8cff";
}
