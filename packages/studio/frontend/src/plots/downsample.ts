// Extreme-preserving downsampling, the same rule as the core's weightslab.operations.downsample:
// both endpoints, the global min and max, and each interior bucket's min and max survive, so a
// spike never vanishes when the page thins the points it keeps.

export const MIN_EXTREME_POINTS = 4;

/** Indices of at most `maxPoints` evenly spaced points of `0..n-1`, first and last included. */
export function uniformIndices(n: number, maxPoints: number): number[] {
  if (maxPoints <= 0 || n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  if (maxPoints === 1) return [n - 1];
  const out: number[] = [];
  for (let i = 0; i < maxPoints; i++) {
    const v = Math.round((i * (n - 1)) / (maxPoints - 1));
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

/** Sorted indices of at most `maxPoints` points (0 = no cap; caps below 4 count as 4). */
export function extremeIndices(values: ArrayLike<number>, maxPoints: number): number[] {
  const n = values.length;
  if (maxPoints <= 0 || n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  maxPoints = Math.max(maxPoints, MIN_EXTREME_POINTS);
  const must = new Set<number>([0, n - 1]);
  let gmin = -1;
  let gmax = -1;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (gmin < 0 || v < values[gmin]!) gmin = i;
    if (gmax < 0 || v > values[gmax]!) gmax = i;
  }
  if (gmin >= 0) {
    must.add(gmin);
    must.add(gmax);
  }
  const buckets = Math.floor((maxPoints - must.size) / 2);
  const picks = new Set<number>(must);
  if (buckets > 0 && n > 2) {
    const interior = n - 2;
    const size = Math.ceil(interior / buckets);
    for (let start = 1; start < n - 1; start += size) {
      const end = Math.min(n - 1, start + size);
      let lo = -1;
      let hi = -1;
      for (let i = start; i < end; i++) {
        const v = values[i]!;
        if (!Number.isFinite(v)) continue;
        if (lo < 0 || v < values[lo]!) lo = i;
        if (hi < 0 || v > values[hi]!) hi = i;
      }
      if (lo >= 0) {
        picks.add(lo);
        picks.add(hi);
      }
    }
  }
  let idx = [...picks].sort((a, b) => a - b);
  if (idx.length > maxPoints) {
    // bucket picks rarely coincide with the extremes: thin them evenly
    const rest = idx.filter((i) => !must.has(i));
    const room = maxPoints - must.size;
    const kept = room > 0 ? uniformIndices(rest.length, room).map((i) => rest[i]!) : [];
    idx = [...must, ...kept].sort((a, b) => a - b);
  }
  return idx;
}
