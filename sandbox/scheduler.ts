/**
 * Admission: at most `concurrency` sandboxes at once, and a bounded FIFO queue in front of them.
 * A full queue answers at once ("busy"); it never grows without end. Each waiting run hears its
 * position (1 = next) when it joins and whenever it moves up.
 */
export interface Ticket {
  /** Resolves with a slot number (0 ≤ slot < concurrency) once the run may start. */
  readonly slot: Promise<number>;
  /** Leaves the queue, or gives the slot back; safe to call more than once. */
  release(): void;
}

interface Waiter {
  resolve(slot: number): void;
  reject(error: Error): void;
  onPosition(position: number): void;
}

export class QueueFullError extends Error {
  constructor() {
    super("all sandboxes are busy and the queue is full; try again in a moment");
  }
}

export class CancelledError extends Error {
  constructor() {
    super("left the queue");
  }
}

export class Scheduler {
  private readonly free: number[];
  private readonly queue: Waiter[] = [];

  constructor(
    readonly concurrency: number,
    readonly queueLength: number,
  ) {
    this.free = Array.from({ length: concurrency }, (_, i) => i);
  }

  get running(): number {
    return this.concurrency - this.free.length;
  }
  get queued(): number {
    return this.queue.length;
  }

  /** Throws QueueFullError when the run can neither start nor wait. */
  admit(onPosition: (position: number) => void): Ticket {
    if (this.queue.length === 0 && this.free.length > 0) {
      const slot = this.free.shift()!;
      return this.ticket(Promise.resolve(slot), () => this.give(slot));
    }
    if (this.queue.length >= this.queueLength) throw new QueueFullError();
    let waiter!: Waiter;
    const slot = new Promise<number>((resolve, reject) => {
      waiter = { resolve, reject, onPosition };
    });
    slot.catch(() => undefined);
    this.queue.push(waiter);
    onPosition(this.queue.length);
    let granted: number | null = null;
    slot.then((s) => (granted = s), () => undefined);
    return this.ticket(slot, () => {
      const index = this.queue.indexOf(waiter);
      if (index >= 0) {
        this.queue.splice(index, 1);
        waiter.reject(new CancelledError());
        this.announce(index);
      } else if (granted !== null) {
        this.give(granted);
      } else {
        // Granted but the promise has not settled yet: give the slot back once it does.
        slot.then((s) => this.give(s), () => undefined);
      }
    });
  }

  private ticket(slot: Promise<number>, releaseOnce: () => void): Ticket {
    let released = false;
    return {
      slot,
      release: () => {
        if (released) return;
        released = true;
        releaseOnce();
      },
    };
  }

  private give(slot: number): void {
    const next = this.queue.shift();
    if (next) {
      next.resolve(slot);
      this.announce(0);
    } else {
      this.free.push(slot);
      this.free.sort((a, b) => a - b);
    }
  }

  /** Tells everyone from `from` on their new position. */
  private announce(from: number): void {
    for (let i = from; i < this.queue.length; i++) this.queue[i]!.onPosition(i + 1);
  }
}
