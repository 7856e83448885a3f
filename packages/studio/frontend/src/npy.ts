// Arrays served as .npy (application/x-npy: the gRPC server's form of tensors) turned into an
// RGBA image the modal can show: (H, W), (H, W, C) or (C, H, W) with C in 1/3/4, min-max scaled.

export interface NpyArray {
  dtype: string;
  shape: number[];
  data: ArrayLike<number>;
}

export class NpyError extends Error {}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function parseNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new NpyError("not a .npy file");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major >= 2 ? view.getUint32(8, true) : view.getUint16(8, true);
  const start = major >= 2 ? 12 : 10;
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1] === "True";
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new NpyError(`unreadable .npy header: ${header.slice(0, 80)}`);
  if (fortran) throw new NpyError("fortran-ordered arrays are not shown");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const little = descr[0] !== ">";
  const kind = descr.slice(1);
  const size = Number(kind.slice(1));
  const get = readerFor(kind, view, little);
  if (!get) throw new NpyError(`dtype ${descr} is not shown`);
  if (offset + count * size > bytes.byteLength) throw new NpyError(".npy data is truncated");
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) data[i] = get(offset + i * size);
  return { dtype: descr, shape, data };
}

function readerFor(kind: string, v: DataView, le: boolean): ((o: number) => number) | null {
  switch (kind) {
    case "f4": return (o) => v.getFloat32(o, le);
    case "f8": return (o) => v.getFloat64(o, le);
    case "u1": case "b1": return (o) => v.getUint8(o);
    case "i1": return (o) => v.getInt8(o);
    case "u2": return (o) => v.getUint16(o, le);
    case "i2": return (o) => v.getInt16(o, le);
    case "u4": return (o) => v.getUint32(o, le);
    case "i4": return (o) => v.getInt32(o, le);
    case "i8": return (o) => Number(v.getBigInt64(o, le));
    case "u8": return (o) => Number(v.getBigUint64(o, le));
    default: return null;
  }
}

export interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** The array as an image, or null when its shape is not an image. */
export function npyToRgba(a: NpyArray): Rgba | null {
  let shape = a.shape.slice();
  while (shape.length > 3 && shape[0] === 1) shape = shape.slice(1); // (1, C, H, W) batches of one
  if (shape.length === 3 && shape[0] === 1 && ![1, 3, 4].includes(shape[2]!)) shape = shape.slice(1); // (1, H, W)
  let h: number, w: number, c: number, chw: boolean;
  if (shape.length === 2) [h, w, c, chw] = [shape[0]!, shape[1]!, 1, false];
  else if (shape.length === 3 && [1, 3, 4].includes(shape[2]!)) [h, w, c, chw] = [shape[0]!, shape[1]!, shape[2]!, false];
  else if (shape.length === 3 && [1, 3, 4].includes(shape[0]!)) [c, h, w, chw] = [shape[0]!, shape[1]!, shape[2]!, true];
  else return null;
  if (!h || !w) return null;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i]!;
    if (Number.isFinite(x)) {
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  // uint8 data in 0..255 stays as it is; anything else is stretched to its own range.
  const raw = a.dtype.endsWith("u1");
  const scale = raw ? 1 : hi > lo ? 255 / (hi - lo) : 0;
  const base = raw ? 0 : Number.isFinite(lo) ? lo : 0;
  const out = new Uint8ClampedArray(w * h * 4);
  const at = (y: number, x: number, k: number): number => (chw ? a.data[k * h * w + y * w + x]! : a.data[(y * w + x) * c + k]!);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      for (let k = 0; k < 3; k++) out[o + k] = (at(y, x, c >= 3 ? k : 0) - base) * scale;
      out[o + 3] = c === 4 ? (at(y, x, 3) - base) * scale : 255;
    }
  }
  return { width: w, height: h, data: out };
}

/** A PNG blob of an RGBA image (browser only). */
export async function rgbaToPng(img: Rgba): Promise<Blob> {
  const canvas = document.createElement("canvas");
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new NpyError("no 2D canvas");
  ctx.putImageData(new ImageData(img.data as unknown as Uint8ClampedArray<ArrayBuffer>, img.width, img.height), 0, 0);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new NpyError("PNG encoding failed"))), "image/png"));
}
