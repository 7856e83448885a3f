// Quick-filter chips compiled to the text syntax of the CLI / core query parser
// (packages/core/src/weightslab/query/text.py). Output is canonical: the parser's own
// format_query() writes the same text back.

export type ColumnKind = "number" | "string" | "bool" | "unknown";

export const CHIP_OPS = [
  "==", "!=", "<", "<=", ">", ">=", "between", "in", "contains", "icontains",
  "is null", "is not null", "has-tag", "not-has-tag",
] as const;
export type ChipOp = (typeof CHIP_OPS)[number];

/** Ops whose value is a tag name (the column is ignored). */
export const TAG_OPS: ReadonlySet<ChipOp> = new Set(["has-tag", "not-has-tag"]);
/** Ops that take no value. */
export const NULLARY_OPS: ReadonlySet<ChipOp> = new Set(["is null", "is not null"]);

export interface Chip {
  column: string;
  op: ChipOp;
  value: string;
}

export class ChipError extends Error {}

// The parser's keywords (matched case-insensitively): a column named like one needs backticks.
const KEYWORDS = new Set([
  "and", "or", "not", "in", "between", "contains", "icontains", "is", "null", "true", "false", "sort",
  "by", "asc", "desc", "limit", "offset", "top", "bottom", "group", "aggregate", "all", "any", "has", "tag",
]);
// ASCII subsets of the parser's identifier/tag rules: anything else is written in backticks,
// which the parser always accepts.
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const TAG_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const TAG_PREFIX = "tag:";

function backtick(name: string): string {
  return "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

export function formatTagName(name: string): string {
  if (!name) throw new ChipError("tag name is empty");
  return TAG_NAME_RE.test(name) ? name : backtick(name);
}

export function formatName(name: string): string {
  if (!name) throw new ChipError("column name is empty");
  if (name.startsWith(TAG_PREFIX) && name.length > TAG_PREFIX.length) {
    return TAG_PREFIX + formatTagName(name.slice(TAG_PREFIX.length));
  }
  if (IDENT_RE.test(name) && !KEYWORDS.has(name.toLowerCase())) return name;
  return backtick(name);
}

/** A JSON string literal with non-ASCII kept as is (like Python's json.dumps(ensure_ascii=False)). */
export function formatString(value: string): string {
  return JSON.stringify(value);
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) throw new ChipError(`${value} is not a finite number`);
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
  const text = String(value);
  return text;
}

function parseNumber(raw: string, what: string): number {
  const t = raw.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) {
    throw new ChipError(`${what}: ${JSON.stringify(raw)} is not a number`);
  }
  const v = Number(t);
  if (!Number.isFinite(v)) throw new ChipError(`${what}: ${JSON.stringify(raw)} is out of range`);
  return v;
}

function unquote(raw: string): string {
  const t = raw.trim();
  if (t.length >= 2 && ((t[0] === '"' && t.at(-1) === '"') || (t[0] === "'" && t.at(-1) === "'"))) {
    return t.slice(1, -1);
  }
  return t;
}

/** One value literal: typed by the column when known, else guessed (number, bool, string). */
export function formatValue(raw: string, kind: ColumnKind): string {
  const t = raw.trim();
  if (kind === "number") return formatNumber(parseNumber(t, "value"));
  if (kind === "string") return formatString(unquote(raw));
  const lower = t.toLowerCase();
  if (kind === "bool") {
    if (lower === "true" || lower === "1") return "true";
    if (lower === "false" || lower === "0") return "false";
    throw new ChipError(`value: ${JSON.stringify(raw)} is not true or false`);
  }
  if (lower === "true" || lower === "false") return lower;
  if (t !== "" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return formatNumber(Number(t));
  return formatString(unquote(raw));
}

function splitList(raw: string): string[] {
  // Commas inside quotes stay in the value.
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  for (const ch of raw) {
    if (quote) {
      cur += ch;
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
    } else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== "");
}

/** The text of one chip, e.g. `loss > 2`, `label in (1, 2)`, `not has:review`. */
export function chipText(chip: Chip, kind: ColumnKind = "unknown"): string {
  const { op } = chip;
  if (op === "has-tag" || op === "not-has-tag") {
    const tag = unquote(chip.value);
    const text = `has:${formatTagName(tag)}`;
    return op === "has-tag" ? text : `not ${text}`;
  }
  const name = formatName(chip.column);
  const isCategory = chip.column.startsWith(TAG_PREFIX);
  const k: ColumnKind = isCategory ? "string" : kind;
  switch (op) {
    case "is null":
      return `${name} is null`;
    case "is not null":
      return `${name} is not null`;
    case "contains":
    case "icontains":
      return `${name} ${op} ${formatString(unquote(chip.value))}`;
    case "between": {
      const parts = chip.value.includes("..") ? chip.value.split("..") : splitList(chip.value);
      if (parts.length !== 2) throw new ChipError(`between: expected "low, high" or "low..high", got ${JSON.stringify(chip.value)}`);
      const lo = parseNumber(parts[0]!, "between");
      const hi = parseNumber(parts[1]!, "between");
      return `${name} between ${formatNumber(lo)} and ${formatNumber(hi)}`;
    }
    case "in": {
      const items = splitList(chip.value);
      return `${name} in (${items.map((v) => formatValue(v, k)).join(", ")})`;
    }
    default: {
      if (chip.value.trim() === "") throw new ChipError(`value: required for ${op}`);
      const value = formatValue(chip.value, k);
      // `discarded == true` is written as the bare column, like the parser's own formatter.
      if (op === "==" && value === "true") return name;
      return `${name} ${op} ${value}`;
    }
  }
}

const CLAUSE_WORDS = new Set(["sort", "limit", "offset", "top", "bottom", "group", "aggregate"]);

/**
 * Splits query text into its filter and its clauses (`sort by ...`, `limit ...`) at the first
 * clause keyword outside strings, backticks and parentheses.
 */
export function splitQuery(text: string): { filter: string; clauses: string } {
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      i++;
      while (i < n && text[i] !== c) i += text[i] === "\\" ? 2 : 1;
      i++;
      continue;
    }
    if (c === "`") {
      i++;
      while (i < n && text[i] !== "`") i += text[i] === "\\" ? 2 : 1;
      i++;
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    if (/[\p{L}_]/u.test(c)) {
      let j = i;
      while (j < n && /[\p{L}\p{N}_.]/u.test(text[j]!)) j++;
      const word = text.slice(i, j).toLowerCase();
      if ((word === "has" || word === "tag") && text[j] === ":") {
        // skip the tag name (it may be a clause word)
        j++;
        if (text[j] === "`") {
          j++;
          while (j < n && text[j] !== "`") j += text[j] === "\\" ? 2 : 1;
          j++;
        } else {
          while (j < n && /[\p{L}\p{N}_.-]/u.test(text[j]!)) j++;
        }
      } else if (depth === 0 && CLAUSE_WORDS.has(word)) {
        return { filter: text.slice(0, i).trim(), clauses: text.slice(i).trim() };
      }
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      while (i < n && /[\p{L}\p{N}_.]/u.test(text[i]!)) i++;
      continue;
    }
    i++;
  }
  return { filter: text.trim(), clauses: "" };
}

/** Chips and the raw query box as one query text: `chip and chip and (raw filter) clauses`. */
export function composeQuery(chips: readonly string[], raw: string): string {
  const { filter, clauses } = splitQuery(raw);
  const parts = [...chips];
  if (filter) parts.push(parts.length ? `(${filter})` : filter);
  const text = parts.join(" and ");
  return [text, clauses].filter(Boolean).join(" ");
}

/** Whether the query text has a filter (an edit by query refuses one without). */
export function hasFilter(text: string): boolean {
  const { filter, clauses } = splitQuery(text);
  return filter.length > 0 || /^(top|bottom)\b/i.test(clauses);
}
