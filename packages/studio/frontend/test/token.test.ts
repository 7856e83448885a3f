import { describe, expect, it } from "vitest";
import { acquireToken, hashWithoutToken, storeToken, TOKEN_KEY, tokenFromHash } from "../src/token";

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string) { return this.data.get(k) ?? null; }
  setItem(k: string, v: string) { this.data.set(k, v); }
  removeItem(k: string) { this.data.delete(k); }
}

describe("token", () => {
  it("reads the token from the fragment", () => {
    expect(tokenFromHash("#token=abc123")).toBe("abc123");
    expect(tokenFromHash("#view=grid&token=a%2Bb%3D")).toBe("a+b=");
    expect(tokenFromHash("#token=")).toBeNull();
    expect(tokenFromHash("")).toBeNull();
    expect(tokenFromHash("#tokens=x")).toBeNull();
  });

  it("strips only the token from the fragment", () => {
    expect(hashWithoutToken("#token=abc")).toBe("");
    expect(hashWithoutToken("#view=grid&token=abc")).toBe("#view=grid");
  });

  it("moves the fragment token to storage and strips the address", () => {
    const storage = new MemoryStorage();
    const urls: string[] = [];
    const t = acquireToken({ hash: "#token=s3cret", pathname: "/", search: "?x=1" }, storage, (u) => urls.push(u));
    expect(t).toBe("s3cret");
    expect(storage.getItem(TOKEN_KEY)).toBe("s3cret");
    expect(urls).toEqual(["/?x=1"]);
    // Next load: no fragment, token from storage, address untouched.
    const t2 = acquireToken({ hash: "", pathname: "/", search: "" }, storage, (u) => urls.push(u));
    expect(t2).toBe("s3cret");
    expect(urls).toHaveLength(1);
  });

  it("a new fragment token replaces the stored one", () => {
    const storage = new MemoryStorage();
    storage.setItem(TOKEN_KEY, "old");
    expect(acquireToken({ hash: "#token=new", pathname: "/", search: "" }, storage, () => {})).toBe("new");
    expect(storage.getItem(TOKEN_KEY)).toBe("new");
  });

  it("returns null without any token; an empty fragment token is still stripped", () => {
    const storage = new MemoryStorage();
    const urls: string[] = [];
    expect(acquireToken({ hash: "#token=", pathname: "/", search: "" }, storage, (u) => urls.push(u))).toBeNull();
    expect(urls).toEqual(["/"]);
  });

  it("stores a pasted token trimmed; blank clears it", () => {
    const storage = new MemoryStorage();
    expect(storeToken(storage, "  tok \n")).toBe("tok");
    expect(storage.getItem(TOKEN_KEY)).toBe("tok");
    expect(storeToken(storage, "  ")).toBeNull();
    expect(storage.getItem(TOKEN_KEY)).toBeNull();
  });
});
