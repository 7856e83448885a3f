// Dark / light theme: the saved choice, else the system preference.

const KEY = "wl-theme";
export type Theme = "dark" | "light";

export function initialTheme(): Theme {
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === "dark" || saved === "light") return saved;
  } catch {
    /* storage disabled: fall through */
  }
  return window.matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark";
}

export function applyTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
}

export function setupTheme(button: HTMLElement, onChange: () => void): void {
  applyTheme(initialTheme());
  button.addEventListener("click", () => {
    const next: Theme = document.documentElement.dataset.theme === "light" ? "dark" : "light";
    applyTheme(next);
    try {
      localStorage.setItem(KEY, next);
    } catch {
      /* not persisted: still applied */
    }
    onChange();
  });
}

/** A CSS custom property of the current theme. */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
