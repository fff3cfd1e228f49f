/**
 * Admission and order: at most `concurrency` sandboxes at once; everyone else waits, in a queue
 * bounded by the wait it implies and by memory, not by a count.
 *
 * - **Admission by estimated wait.** Each waiting run carries its cost (the compile it needs, unless
 *   the same compile is cached, in flight, or done by a run ahead of it, plus the run itself; the
 *   engine learns both from measured times). A new run is admitted when the wait it would face,
 *   computed from what runs and what waits ahead of it, stays within `maxWaitMs`, and while the
 *   queued requests' bytes stay within `maxQueueBytes`. Otherwise it is refused with BusyError,
 *   which carries the estimate. A lecture hall pressing Run on one slide costs one compile and a
 *   few hundred cheap runs: all of them wait and are served.
 * - **Round-robin over clients.** Waiting runs are grouped by client (the address); the next slot
 *   goes to the next client in turn. A client with 50 waiting runs delays another client's single
 *   run by at most one run.
 * - **A client's own runs** wait behind its earlier ones. An identical run from the same session
 *   (a held Ctrl+Enter) replaces the waiting one in place, and beyond `maxWaitingPerSession`
 *   waiting runs the session's oldest waiting run is replaced (ReplacedError): its newest edits
 *   count, and its queue never grows.
 * - **Background work** (prewarming the compile cache) runs only when no user waits, on at most
 *   concurrency − 1 slots (one with a single slot), and is never refused or counted in estimates.
 * - Each waiting run hears its position (1 = next) and estimated wait when it joins, and again
 *   (coalesced, at most every `announceMs`) whenever either moves.
 */
export interface Ticket {
  /** Resolves with a slot number (0 ≤ slot < concurrency) once the run may start. */
  readonly slot: Promise<number>;
  /** Leaves the queue, or gives the slot back; safe to call more than once. */
  release(): void;
}

export interface AdmitRequest {
  /** Who asks: round-robin is over clients (an address). */
  client?: string;
  /** Which tab or connection of the client: the unit of "its own runs" for replacing. */
  session?: string;
  /** Identical runs (same compile, same input) share this; a newer identical one replaces a waiting one. */
  identity?: string;
  /** The compile this run needs (cache key); none for runs that compile nothing. */
  compileKey?: string;
  /** Estimated slot time of the compile (spent unless the key is compiled by then) and of the run. */
  compileMs: number;
  runMs: number;
  /** What the waiting run holds in memory (its request). */
  bytes: number;
  background?: boolean;
  /** Position (1 = next) and estimated wait; called when the run joins and when either moves. */
  onQueued?(position: number, estimatedWaitMs: number): void;
}

export interface SchedulerOptions {
  concurrency: number;
  /** Runs whose estimated wait would exceed this are refused. */
  maxWaitMs: number;
  /** Bytes of waiting requests (plus a fixed overhead each) the queue may hold. */
  maxQueueBytes: number;
  /** Waiting runs per session before the oldest is replaced. */
  maxWaitingPerSession: number;
  /** Whether a compile is cached or in flight (costs nothing more for a waiting run). */
  isCompiled(key: string): boolean;
  /** Coalescing interval of position updates. */
  announceMs: number;
}

/** Refused: the wait would be too long or the queue's memory is full. */
export class BusyError extends Error {
  constructor(
    message: string,
    /** The estimated wait this run would have faced (or the time until room is likely). */
    readonly estimatedWaitMs: number,
  ) {
    super(message);
  }
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.estimatedWaitMs / 1000));
  }
}

export class CancelledError extends Error {
  constructor() {
    super("left the queue");
  }
}

export class ReplacedError extends Error {
  constructor(why: "identical" | "newer") {
    super(
      why === "identical"
        ? "replaced: the same run was started again from this client while this one waited; the newer one keeps its place"
        : "replaced: this client started newer runs while this one waited (only its newest few wait)",
    );
  }
}

/** Memory a waiting run costs besides its request's bytes (the job, its closures, the socket's share). */
const WAITER_OVERHEAD_BYTES = 4096;

interface Waiter {
  request: AdmitRequest;
  client: string;
  /** Unset: the run belongs to no session, and is never replaced. */
  session: string | undefined;
  resolve(slot: number): void;
  reject(error: Error): void;
  lastPosition: number;
  lastEstimateMs: number;
  state: "waiting" | "granted" | "gone";
}

interface Running {
  startedAt: number;
  costMs: number;
  background: boolean;
}

const formatWait = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

export class Scheduler {
  private readonly free: number[];
  private readonly running = new Map<number, Running>();
  /** Waiting user runs per client, each FIFO. */
  private readonly byClient = new Map<string, Waiter[]>();
  /** Clients with waiting runs, in turn order: the head is served next. */
  private rotation: string[] = [];
  private readonly background: Waiter[] = [];
  private queuedBytes = 0;
  private announceTimer: NodeJS.Timeout | null = null;
  private readonly options: SchedulerOptions;

  constructor(options: Partial<SchedulerOptions> & { concurrency: number }) {
    this.options = {
      maxWaitMs: 30_000,
      maxQueueBytes: 64 * 1024 * 1024,
      maxWaitingPerSession: 4,
      isCompiled: () => false,
      announceMs: 250,
      ...options,
    };
    this.free = Array.from({ length: options.concurrency }, (_, i) => i);
  }

  get concurrency(): number {
    return this.options.concurrency;
  }
  get maxWaitMs(): number {
    return this.options.maxWaitMs;
  }
  get maxQueueBytes(): number {
    return this.options.maxQueueBytes;
  }
  get runningCount(): number {
    return this.running.size;
  }
  /** User runs waiting (background work not counted). */
  get queued(): number {
    let n = 0;
    for (const q of this.byClient.values()) n += q.length;
    return n;
  }
  get backgroundQueued(): number {
    return this.background.length;
  }

  /** Throws BusyError when the run can neither start nor wait. */
  admit(request: AdmitRequest): Ticket {
    const client = request.client ?? "";
    const session = request.session;
    let waiter!: Waiter;
    const slot = new Promise<number>((resolve, reject) => {
      waiter = { request, client, session, resolve, reject, lastPosition: 0, lastEstimateMs: -1, state: "waiting" };
    });
    slot.catch(() => undefined);
    const ticket = this.ticket(waiter, slot);

    if (request.background) {
      this.background.push(waiter);
      this.queuedBytes += request.bytes + WAITER_OVERHEAD_BYTES;
      this.dispatch();
      return ticket;
    }
    if (this.queued === 0 && this.free.length > 0) {
      this.enqueue(waiter);
      this.dispatch();
      return ticket;
    }

    const queue = this.byClient.get(client) ?? [];
    const identical = request.identity && session !== undefined ? queue.find((w) => w.session === session && w.request.identity === request.identity) : undefined;
    if (identical) {
      // In place: a held Ctrl+Enter keeps its place in line.
      queue[queue.indexOf(identical)] = waiter;
      this.queuedBytes += request.bytes - identical.request.bytes;
      this.leave(identical, new ReplacedError("identical"), false);
    } else {
      const bytes = request.bytes + WAITER_OVERHEAD_BYTES;
      if (this.queuedBytes + bytes > this.options.maxQueueBytes) {
        const drainMs = this.estimates().totalMs / 2;
        throw new BusyError(
          `all sandboxes are busy and the queue's memory is full (${this.queued} runs wait); try again in about ${formatWait(drainMs)}`,
          drainMs,
        );
      }
      this.enqueue(waiter);
      const wait = this.estimates().waits.get(waiter) ?? 0;
      if (wait > this.options.maxWaitMs) {
        this.remove(waiter);
        throw new BusyError(
          `all sandboxes are busy: ${this.queued} runs wait, an estimated ${formatWait(wait)} for this one, over the server's bound of ${formatWait(this.options.maxWaitMs)}; try again in about ${formatWait(wait)}`,
          wait,
        );
      }
      if (session !== undefined) {
        const own = (this.byClient.get(client) ?? []).filter((w) => w.session === session);
        if (own.length > this.options.maxWaitingPerSession) this.leave(own[0]!, new ReplacedError("newer"));
      }
    }
    this.dispatch();
    this.tell(waiter);
    this.scheduleAnnounce();
    return ticket;
  }

  /** Estimated wait of a new run from a new client now (for health and tests). */
  estimatedWaitMs(): number {
    return this.estimates().totalMs / Math.max(1, this.options.concurrency);
  }

  private ticket(waiter: Waiter, slot: Promise<number>): Ticket {
    let granted: number | null = null;
    slot.then(
      (s) => (granted = s),
      () => undefined,
    );
    let released = false;
    return {
      slot,
      release: () => {
        if (released) return;
        released = true;
        if (waiter.state === "waiting") this.leave(waiter, new CancelledError());
        else if (waiter.state === "granted") {
          waiter.state = "gone";
          if (granted !== null) this.give(granted);
          // Granted but the promise has not settled yet: give the slot back once it does.
          else slot.then((s) => this.give(s), () => undefined);
        }
      },
    };
  }

  private enqueue(waiter: Waiter): void {
    const queue = this.byClient.get(waiter.client);
    if (queue) queue.push(waiter);
    else {
      this.byClient.set(waiter.client, [waiter]);
      this.rotation.push(waiter.client);
    }
    this.queuedBytes += waiter.request.bytes + WAITER_OVERHEAD_BYTES;
  }

  /** Takes a waiter out of its queue (not yet granted). */
  private remove(waiter: Waiter): void {
    if (waiter.request.background) {
      const i = this.background.indexOf(waiter);
      if (i >= 0) this.background.splice(i, 1);
    } else {
      const queue = this.byClient.get(waiter.client);
      const i = queue ? queue.indexOf(waiter) : -1;
      if (queue && i >= 0) {
        queue.splice(i, 1);
        if (queue.length === 0) {
          this.byClient.delete(waiter.client);
          this.rotation = this.rotation.filter((c) => c !== waiter.client);
        }
      }
    }
    this.queuedBytes -= waiter.request.bytes + WAITER_OVERHEAD_BYTES;
  }

  private leave(waiter: Waiter, error: Error, removeFromQueue = true): void {
    if (waiter.state !== "waiting") return;
    if (removeFromQueue) this.remove(waiter);
    waiter.state = "gone";
    waiter.reject(error);
    this.scheduleAnnounce();
  }

  private give(slot: number): void {
    this.running.delete(slot);
    // Least recently used first: consecutive runs take turns, so each slot's next prepared
    // sandboxes have the time to get ready.
    this.free.push(slot);
    this.dispatch();
  }

  /** Hands free slots to waiting runs: users in turn, then background work on the slots users leave. */
  private dispatch(): void {
    let moved = false;
    while (this.free.length > 0) {
      const client = this.rotation[0];
      let waiter: Waiter | undefined;
      if (client !== undefined) {
        const queue = this.byClient.get(client)!;
        waiter = queue.shift()!;
        this.rotation.shift();
        if (queue.length > 0) this.rotation.push(client);
        else this.byClient.delete(client);
      } else {
        const backgroundRunning = [...this.running.values()].filter((r) => r.background).length;
        if (this.background.length === 0 || backgroundRunning >= Math.max(1, this.options.concurrency - 1)) break;
        waiter = this.background.shift()!;
      }
      this.queuedBytes -= waiter.request.bytes + WAITER_OVERHEAD_BYTES;
      const slot = this.free.shift()!;
      const compiled = waiter.request.compileKey ? this.options.isCompiled(waiter.request.compileKey) : true;
      this.running.set(slot, {
        startedAt: performance.now(),
        costMs: waiter.request.runMs + (compiled ? 0 : waiter.request.compileMs),
        background: !!waiter.request.background,
      });
      waiter.state = "granted";
      waiter.resolve(slot);
      moved = true;
    }
    if (moved) this.scheduleAnnounce();
  }

  /** The user runs in the order they will start (round-robin over clients), as dispatch() would take them. */
  private order(): Waiter[] {
    const queues = this.rotation.map((c) => this.byClient.get(c)!);
    const ordered: Waiter[] = [];
    for (let round = 0; ordered.length < this.queued; round++) {
      for (const q of queues) if (q.length > round) ordered.push(q[round]!);
    }
    return ordered;
  }

  /**
   * Each waiting user run's estimated wait: the slots' remaining work, then each run ahead in
   * order on the slot that frees first. A compile counts once per key (cached, in flight, or done
   * by an earlier run in line).
   */
  private estimates(): { waits: Map<Waiter, number>; positions: Map<Waiter, number>; totalMs: number } {
    const now = performance.now();
    const slots: number[] = [];
    for (let i = 0; i < this.options.concurrency; i++) {
      const r = this.running.get(i);
      // A run past its estimate is not about to end: assume a quarter of its estimate is still ahead.
      slots.push(r ? Math.max(r.costMs - (now - r.startedAt), r.costMs / 4) : 0);
    }
    const compiled = new Set<string>();
    const waits = new Map<Waiter, number>();
    const positions = new Map<Waiter, number>();
    let position = 0;
    for (const w of this.order()) {
      let first = 0;
      for (let i = 1; i < slots.length; i++) if (slots[i]! < slots[first]!) first = i;
      waits.set(w, Math.round(slots[first]!));
      positions.set(w, ++position);
      const key = w.request.compileKey;
      const needsCompile = key !== undefined && !compiled.has(key) && !this.options.isCompiled(key);
      if (key !== undefined) compiled.add(key);
      slots[first]! += w.request.runMs + (needsCompile ? w.request.compileMs : 0);
    }
    return { waits, positions, totalMs: slots.reduce((a, b) => a + b, 0) };
  }

  private tell(waiter: Waiter, estimates = this.estimates()): void {
    const position = estimates.positions.get(waiter);
    const wait = estimates.waits.get(waiter);
    if (position === undefined || wait === undefined || waiter.state !== "waiting") return;
    // A new position always; the same one only when the estimate moved by a second or more.
    if (position === waiter.lastPosition && Math.abs(wait - waiter.lastEstimateMs) < 1000) return;
    waiter.lastPosition = position;
    waiter.lastEstimateMs = wait;
    try {
      waiter.request.onQueued?.(position, wait);
    } catch {
      // a failing listener must not stop the queue
    }
  }

  /** Position updates, coalesced: a burst of dispatches sends each waiter one update. */
  private scheduleAnnounce(): void {
    if (this.announceTimer) return;
    this.announceTimer = setTimeout(() => {
      this.announceTimer = null;
      if (this.queued === 0) return;
      const estimates = this.estimates();
      for (const w of estimates.positions.keys()) this.tell(w, estimates);
      // While runs wait, the estimates move with time even when nobody moves up.
      this.scheduleAnnounce();
    }, this.options.announceMs);
    this.announceTimer.unref?.();
  }
}
