import { describe, expect, it } from "vitest";
import { NpyError, npyToRgba, parseNpy } from "../src/npy";

function npy(descr: string, shape: number[], values: number[], bytesPer: number, write: (v: DataView, o: number, x: number) => void): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const pad = 16 - ((10 + header.length + 1) % 16);
  header += " ".repeat(pad % 16) + "\n";
  const out = new Uint8Array(10 + header.length + values.length * bytesPer);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => write(v, 10 + header.length + i * bytesPer, x));
  return out;
}

describe("npy", () => {
  it("parses float32 (1, H, W) and scales to 0..255 grey", () => {
    const bytes = npy("<f4", [1, 2, 2], [0, 8, 16, 4], 4, (v, o, x) => v.setFloat32(o, x, true));
    const a = parseNpy(bytes);
    expect(a.shape).toEqual([1, 2, 2]);
    expect(Array.from(a.data)).toEqual([0, 8, 16, 4]);
    const img = npyToRgba(a)!;
    expect([img.width, img.height]).toEqual([2, 2]);
    expect(Array.from(img.data.slice(0, 8))).toEqual([0, 0, 0, 255, 128, 128, 128, 255]);
    expect(img.data[8]).toBe(255);
  });

  it("keeps uint8 HWC colour as it is", () => {
    const bytes = npy("|u1", [1, 1, 3], [10, 20, 30], 1, (v, o, x) => v.setUint8(o, x));
    const img = npyToRgba(parseNpy(bytes))!;
    expect(Array.from(img.data)).toEqual([10, 20, 30, 255]);
  });

  it("reads CHW colour", () => {
    const bytes = npy("<f8", [3, 1, 2], [0, 1, 0, 1, 1, 0], 8, (v, o, x) => v.setFloat64(o, x, true));
    const img = npyToRgba(parseNpy(bytes))!;
    expect(Array.from(img.data)).toEqual([0, 0, 255, 255, 255, 255, 0, 255]);
  });

  it("refuses what is not an image or not .npy", () => {
    expect(npyToRgba(parseNpy(npy("<i4", [5], [1, 2, 3, 4, 5], 4, (v, o, x) => v.setInt32(o, x, true))))).toBeNull();
    expect(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))).toThrow(NpyError);
    expect(() => parseNpy(npy("<c16", [1], [0], 16, () => {}))).toThrow(/dtype/);
  });
});
