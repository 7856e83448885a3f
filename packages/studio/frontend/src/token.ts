// The launcher prints https://host:port/#token=...; a fragment never reaches a server. The page
// moves the token to sessionStorage and removes it from the address bar at once.

export const TOKEN_KEY = "wl-token";

export interface TokenStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The token in a URL fragment (`#token=...`, possibly among other `&`-separated keys). */
export function tokenFromHash(hash: string): string | null {
  const body = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!body) return null;
  for (const part of body.split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq) !== "token") continue;
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
    } catch {
      value = part.slice(eq + 1);
    }
    value = value.trim();
    return value || null;
  }
  return null;
}

/** The fragment with the token removed ("" when nothing else is left). */
export function hashWithoutToken(hash: string): string {
  const body = hash.startsWith("#") ? hash.slice(1) : hash;
  const rest = body.split("&").filter((p) => p && !p.startsWith("token="));
  return rest.length ? `#${rest.join("&")}` : "";
}

export interface TokenLocation {
  hash: string;
  pathname: string;
  search: string;
}

/**
 * Takes the token out of the address (storing it) or from storage. `replaceUrl` is called with
 * the address without the token whenever the fragment held one.
 */
export function acquireToken(
  location: TokenLocation,
  storage: TokenStorage,
  replaceUrl: (url: string) => void,
): string | null {
  const fromHash = tokenFromHash(location.hash);
  if (location.hash.includes("token=")) {
    replaceUrl(location.pathname + location.search + hashWithoutToken(location.hash));
  }
  if (fromHash) {
    storage.setItem(TOKEN_KEY, fromHash);
    return fromHash;
  }
  const stored = storage.getItem(TOKEN_KEY);
  return stored && stored.trim() ? stored.trim() : null;
}

export function storeToken(storage: TokenStorage, token: string): string | null {
  const t = token.trim();
  if (!t) {
    storage.removeItem(TOKEN_KEY);
    return null;
  }
  storage.setItem(TOKEN_KEY, t);
  return t;
}
