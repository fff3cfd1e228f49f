/**
 * Prepared sandboxes: a driver wrapper that keeps sandboxes waiting per slot and shape, so a
 * run's compile and run sandboxes start without their set-up (cgroups, tmpfs, namespaces, a
 * container) on the path. Works with any driver that implements `prepareSandbox`; others are
 * started fresh, as without the pool.
 *
 * - A shape is learnt from use (or named up front with `keepWarm`): the compile and the default
 *   run shape of each slot, plus a few others; the least recently used beyond `maxShapes` per
 *   slot is dropped. Shapes with binds (kernel runs: a run tree per build) are never pooled,
 *   unless every bind is `shared` (the same for every run: the prebuilt Rust crates).
 * - Taking a sandbox starts the preparation of the next one of that shape once the taken one is
 *   removed (after the answer: not competing with the run for the CPU), in the background. A slot
 *   runs one sandbox at a time, but its next run can come before the last one was removed and
 *   replaced (a lecture hall: 200 runs of one example, a few milliseconds each): `depth` (the
 *   engine asks for two with bubblewrap) waiting per shape cover that. A run that finds none
 *   waiting starts its sandbox fresh, which costs what preparing would, on its own path.
 * - A sandbox whose preparation failed is thrown away and the spec started fresh (which then
 *   reports the failure the usual way); preparations pause for a moment after a failure.
 * - Each prepared sandbox is used once: nothing of one run is visible to the next.
 */
import {
  shapeKey,
  shapeOf,
  type PreparedSandbox,
  type SandboxDriver,
  type SandboxProcess,
  type SandboxShape,
  type SandboxSpec,
} from "./drivers/driver";

export interface SandboxPoolOptions {
  /** Start of every prepared sandbox's name (cgroups, temp dirs). */
  namePrefix: string;
  /** Shapes kept waiting per slot (default 3: compile, run, one more). */
  maxShapesPerSlot: number;
  /**
   * Sandboxes kept waiting per shape (default 2). With one, a slot's next run that comes before
   * the previous sandbox was removed and its successor prepared (a lecture hall: a run every few
   * milliseconds per slot) found none ready and started fresh, with the whole set-up on its path.
   */
  depth: number;
}

interface Waiting {
  shape: SandboxShape;
  /** Oldest first: the one most likely ready. */
  sandboxes: PreparedSandbox[];
  failed: boolean;
  lastUsed: number;
}

const RETRY_AFTER_FAILURE_MS = 5000;

export class SandboxPool implements SandboxDriver {
  private readonly waiting = new Map<string, Waiting>();
  private counter = 0;
  private closed = false;
  private pausedUntil = 0;
  /** Sandboxes started from a prepared one, and started fresh (none was ready). */
  readonly starts = { prepared: 0, fresh: 0 };
  private readonly options: SandboxPoolOptions;

  constructor(
    readonly driver: SandboxDriver,
    options: Partial<SandboxPoolOptions> = {},
  ) {
    this.options = { namePrefix: "pool", maxShapesPerSlot: 3, depth: 2, ...options };
    if (driver.sandboxUser) this.sandboxUser = (slot) => driver.sandboxUser!(slot);
  }

  get name(): string {
    return this.driver.name;
  }

  /** Whether this pool can prepare at all (the driver implements prepareSandbox). */
  get enabled(): boolean {
    return typeof this.driver.prepareSandbox === "function" && !this.closed;
  }

  prepare(): Promise<void> {
    return this.driver.prepare();
  }

  /** The driver's, when it has one. */
  readonly sandboxUser?: (slot: number) => { uid: number; gid: number };

  leftovers(prefix: string): string[] {
    return this.driver.leftovers(prefix);
  }

  /** Prepared sandboxes now waiting (for health and tests). */
  get preparedCount(): number {
    let n = 0;
    for (const w of this.waiting.values()) for (const s of w.sandboxes) if (!s.spent) n++;
    return n;
  }

  /** Keeps a sandbox of this shape waiting from now on (the engine names the shapes every run uses). */
  keepWarm(shape: SandboxShape): void {
    if (!this.enabled || !poolable(shape)) return;
    const key = shapeKey(shape);
    if (!this.waiting.has(key)) this.remember(key, shape);
    this.refill(key);
  }

  start(spec: SandboxSpec): SandboxProcess {
    const shape = shapeOf(spec);
    if (!this.enabled || !poolable(shape)) return this.driver.start(spec);
    const key = shapeKey(shape);
    const entry = this.waiting.get(key) ?? this.remember(key, shape);
    entry.lastUsed = Date.now();
    // The oldest first (most likely ready); spent ones (discarded meanwhile) are dropped.
    let prepared: PreparedSandbox | undefined;
    while (!prepared && entry.sandboxes.length > 0) {
      const next = entry.sandboxes.shift()!;
      if (!next.spent) prepared = next;
    }
    if (prepared && !entry.failed) {
      this.starts.prepared++;
      const process = prepared.start(spec);
      // The next one is prepared once this one is gone (after the run's answer): not competing
      // with the run's later phases for the CPU.
      void process.removed.finally(() => this.refill(key));
      return process;
    }
    if (prepared) void prepared.discard();
    this.refill(key);
    this.starts.fresh++;
    return this.driver.start(spec);
  }

  /** Stops preparing and removes every waiting sandbox. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.waiting.values()].flatMap((w) => w.sandboxes);
    this.waiting.clear();
    await Promise.all(all.map((s) => s.discard()));
  }

  private remember(key: string, shape: SandboxShape): Waiting {
    const entry: Waiting = { shape, sandboxes: [], failed: false, lastUsed: Date.now() };
    this.waiting.set(key, entry);
    const sameSlot = [...this.waiting.entries()].filter(([, w]) => w.shape.slot === shape.slot);
    if (sameSlot.length > this.options.maxShapesPerSlot) {
      const [oldestKey, oldest] = sameSlot.sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0]!;
      this.waiting.delete(oldestKey);
      for (const s of oldest.sandboxes) void s.discard();
    }
    return entry;
  }

  /** Prepares sandboxes of this shape until `depth` wait (one at a time after a failure). */
  private refill(key: string): void {
    const entry = this.waiting.get(key);
    while (entry && entry.sandboxes.length < this.options.depth && !this.closed && Date.now() >= this.pausedUntil) {
      const name = `${this.options.namePrefix}-p${(this.counter++).toString(36)}`;
      let sandbox: PreparedSandbox;
      try {
        sandbox = this.driver.prepareSandbox!(name, entry.shape);
      } catch {
        this.pausedUntil = Date.now() + RETRY_AFTER_FAILURE_MS;
        return;
      }
      entry.sandboxes.push(sandbox);
      entry.failed = false;
      sandbox.ready.catch(() => {
        const i = entry.sandboxes.indexOf(sandbox);
        if (i < 0) return;
        entry.failed = true;
        this.pausedUntil = Date.now() + RETRY_AFTER_FAILURE_MS;
        entry.sandboxes.splice(i, 1);
        void sandbox.discard();
      });
    }
  }
}

/**
 * Shapes with binds name one run's own files (a kernel run tree, an image): never prepared ahead;
 * binds marked `shared` are the same for every run of their kind (the Rust crates) and may be.
 */
function poolable(shape: SandboxShape): boolean {
  return shape.readOnlyBinds.every((b) => b.shared) && shape.readWriteBinds.length === 0;
}
