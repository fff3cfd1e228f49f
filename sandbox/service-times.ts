/**
 * What a compile and a run really cost on this machine, learnt from measured slot times: the
 * scheduler's estimates (admission, the wait shown to students) are built from these. A moving
 * average per kind, starting from figures measured on the 2-core development machines; prewarming
 * at start refines the compile figures before the first student arrives.
 */
export type ServiceKind = "compile:c" | "compile:cpp" | "compile:asm" | "compile:rust" | "compile:kernel" | "run" | "boot:kernel";

const START_MS: Record<ServiceKind, number> = {
  "compile:c": 120,
  "compile:cpp": 400,
  "compile:asm": 80,
  "compile:rust": 300,
  "compile:kernel": 1500,
  run: 40,
  "boot:kernel": 600,
};

/** Weight of the newest measurement. */
const ALPHA = 0.2;

export class ServiceTimes {
  private readonly ms = new Map<ServiceKind, number>(Object.entries(START_MS) as Array<[ServiceKind, number]>);

  estimate(kind: ServiceKind): number {
    return this.ms.get(kind) ?? 100;
  }

  record(kind: ServiceKind, measuredMs: number): void {
    if (!Number.isFinite(measuredMs) || measuredMs < 0) return;
    const before = this.estimate(kind);
    this.ms.set(kind, before + ALPHA * (measuredMs - before));
  }
}
