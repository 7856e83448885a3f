// One scheduler for every request the page repeats. Per kind: at most one request in flight;
// back-off with jitter while the server answers UNAVAILABLE / RESOURCE_EXHAUSTED; slower while
// the tab is hidden. One-off requests of a kind (`run`) share the same one-in-flight rule: a
// newer request replaces a queued older one (latest wins).

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Visibility {
  hidden(): boolean;
  onChange(fn: () => void): void;
}

export interface SchedulerOptions {
  timers?: Timers;
  visibility?: Visibility;
  random?: () => number;
  /** Whether an error means "busy or down: back off" (UNAVAILABLE, RESOURCE_EXHAUSTED). */
  isBackoffError?: (err: unknown) => boolean;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Interval multiplier while the tab is hidden. */
  hiddenFactor?: number;
  /** Intervals never shorter than this while hidden. */
  hiddenMinMs?: number;
}

export interface PollSpec {
  kind: string;
  intervalMs: number;
  run: () => Promise<void>;
  /** Errors after the poll's own handling (the scheduler has already planned the retry). */
  onError?: (err: unknown, failures: number) => void;
  onSuccess?: () => void;
  /** Start paused (started by `trigger`/`resume`). */
  paused?: boolean;
}

export class Superseded extends Error {
  constructor(kind: string) {
    super(`${kind}: superseded by a newer request`);
    this.name = "Superseded";
  }
}

interface KindState {
  inFlight: boolean;
  failures: number;
  poll?: PollSpec & { paused: boolean };
  timer?: unknown;
  dueAt?: number;
  pending?: { fn: () => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };
  backoffUntil: number;
}

const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export function documentVisibility(doc: Document): Visibility {
  return {
    hidden: () => doc.visibilityState === "hidden",
    onChange: (fn) => doc.addEventListener("visibilitychange", fn),
  };
}

/** Exponential back-off with "equal jitter": between half and all of base * 2^(failures-1). */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

export class Scheduler {
  private readonly kinds = new Map<string, KindState>();
  private readonly timers: Timers;
  private readonly visibility: Visibility | undefined;
  private readonly random: () => number;
  private readonly isBackoffError: (err: unknown) => boolean;
  private readonly base: number;
  private readonly max: number;
  private readonly hiddenFactor: number;
  private readonly hiddenMin: number;
  private stopped = false;

  constructor(opts: SchedulerOptions = {}) {
    this.timers = opts.timers ?? realTimers;
    this.visibility = opts.visibility;
    this.random = opts.random ?? Math.random;
    this.isBackoffError = opts.isBackoffError ?? (() => false);
    this.base = opts.baseBackoffMs ?? 500;
    this.max = opts.maxBackoffMs ?? 30_000;
    this.hiddenFactor = opts.hiddenFactor ?? 5;
    this.hiddenMin = opts.hiddenMinMs ?? 5_000;
    this.visibility?.onChange(() => this.onVisibility());
  }

  private state(kind: string): KindState {
    let s = this.kinds.get(kind);
    if (!s) {
      s = { inFlight: false, failures: 0, backoffUntil: 0 };
      this.kinds.set(kind, s);
    }
    return s;
  }

  /** Consecutive back-off failures of a kind (0 when healthy). */
  failures(kind: string): number {
    return this.kinds.get(kind)?.failures ?? 0;
  }

  inFlight(kind: string): boolean {
    return this.kinds.get(kind)?.inFlight ?? false;
  }

  /** The interval a poll runs at now (hidden tab: slower). */
  effectiveInterval(intervalMs: number): number {
    if (this.visibility?.hidden()) return Math.max(intervalMs * this.hiddenFactor, this.hiddenMin);
    return intervalMs;
  }

  /** Registers a periodic request; the first run happens at once (unless paused). */
  poll(spec: PollSpec): void {
    const s = this.state(spec.kind);
    if (s.poll) throw new Error(`poll ${spec.kind} is already registered`);
    s.poll = { ...spec, paused: !!spec.paused };
    if (!s.poll.paused) this.schedule(spec.kind, 0);
  }

  setInterval(kind: string, intervalMs: number): void {
    const s = this.kinds.get(kind);
    if (!s?.poll) return;
    const changed = s.poll.intervalMs !== intervalMs;
    s.poll.intervalMs = intervalMs;
    if (changed && !s.inFlight && !s.poll.paused && s.failures === 0) this.schedule(kind, this.effectiveInterval(intervalMs));
  }

  pause(kind: string): void {
    const s = this.kinds.get(kind);
    if (!s?.poll) return;
    s.poll.paused = true;
    this.clear(s);
  }

  resume(kind: string): void {
    const s = this.kinds.get(kind);
    if (!s?.poll || !s.poll.paused) return;
    s.poll.paused = false;
    this.schedule(kind, 0);
  }

  /** Runs a poll as soon as allowed (not while one is in flight, not before its back-off ends). */
  trigger(kind: string): void {
    const s = this.kinds.get(kind);
    if (!s?.poll || s.poll.paused) return;
    if (s.inFlight) {
      s.dueAt = 0; // run again right after the current one
      return;
    }
    const wait = Math.max(0, s.backoffUntil - this.timers.now());
    this.schedule(kind, wait);
  }

  /**
   * A one-off request of a kind: runs now if none of that kind is in flight, otherwise after it
   * (a newer queued request replaces an older one, whose promise rejects with Superseded).
   */
  run<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    const s = this.state(kind);
    return new Promise<T>((resolve, reject) => {
      if (s.pending) s.pending.reject(new Superseded(kind));
      s.pending = { fn, resolve: resolve as (v: unknown) => void, reject };
      if (!s.inFlight) this.drain(kind);
    });
  }

  stopAll(): void {
    this.stopped = true;
    for (const s of this.kinds.values()) {
      this.clear(s);
      if (s.pending) {
        s.pending.reject(new Superseded("stopped"));
        s.pending = undefined;
      }
    }
  }

  private clear(s: KindState): void {
    if (s.timer !== undefined) this.timers.clearTimeout(s.timer);
    s.timer = undefined;
  }

  private schedule(kind: string, delayMs: number): void {
    if (this.stopped) return;
    const s = this.state(kind);
    this.clear(s);
    s.dueAt = this.timers.now() + delayMs;
    s.timer = this.timers.setTimeout(() => {
      s.timer = undefined;
      void this.fire(kind);
    }, delayMs);
  }

  private onVisibility(): void {
    const visible = !this.visibility?.hidden();
    for (const [kind, s] of this.kinds) {
      if (!s.poll || s.poll.paused || s.inFlight || s.failures > 0) continue;
      // Coming back: refresh now. Going away: stretch the wait already planned.
      this.schedule(kind, visible ? 0 : this.effectiveInterval(s.poll.intervalMs));
    }
  }

  private async fire(kind: string): Promise<void> {
    const s = this.state(kind);
    const poll = s.poll;
    if (!poll || poll.paused || this.stopped) return;
    if (s.inFlight) {
      s.dueAt = 0; // a one-off request of this kind is running: poll right after it
      return;
    }
    s.inFlight = true;
    s.dueAt = undefined;
    let next: number;
    try {
      await poll.run();
      s.failures = 0;
      s.backoffUntil = 0;
      poll.onSuccess?.();
      next = this.effectiveInterval(poll.intervalMs);
    } catch (err) {
      if (this.isBackoffError(err)) {
        s.failures++;
        next = Math.max(this.effectiveInterval(poll.intervalMs), backoffDelay(s.failures, this.base, this.max, this.random));
        s.backoffUntil = this.timers.now() + next;
      } else {
        s.failures = 0;
        next = this.effectiveInterval(poll.intervalMs);
      }
      poll.onError?.(err, s.failures);
    } finally {
      s.inFlight = false;
    }
    if (s.poll && !s.poll.paused && !this.stopped) {
      const again = s.dueAt === 0 && s.failures === 0;
      this.schedule(kind, again ? 0 : next);
    }
    if (s.pending) this.drain(kind);
  }

  private drain(kind: string): void {
    const s = this.state(kind);
    const job = s.pending;
    if (!job || s.inFlight || this.stopped) return;
    s.pending = undefined;
    s.inFlight = true;
    const wait = Math.max(0, s.backoffUntil - this.timers.now());
    const go = async (): Promise<void> => {
      try {
        const value = await job.fn();
        s.failures = 0;
        s.backoffUntil = 0;
        job.resolve(value);
      } catch (err) {
        if (this.isBackoffError(err)) {
          s.failures++;
          s.backoffUntil = this.timers.now() + backoffDelay(s.failures, this.base, this.max, this.random);
        }
        job.reject(err);
      } finally {
        s.inFlight = false;
        if (s.pending) this.drain(kind);
        else if (s.poll && s.dueAt === 0) this.schedule(kind, 0);
      }
    };
    if (wait > 0) this.timers.setTimeout(() => void go(), wait);
    else void go();
  }
}
