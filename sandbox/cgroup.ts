/**
 * One sandbox's cgroups (v1): memory (swap included), pids, cpu shares, cpuacct for CPU time and
 * freezer for killing a tree that is still forking. Each lives at
 * /sys/fs/cgroup/<controller>/<parent>/<name>, e.g. /sys/fs/cgroup/memory/osbyexample/run-1a2b-c.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileSystemCgroups, type CgroupFiles, type CgroupStep } from "./mount-helper";

export const CGROUP_ROOT = "/sys/fs/cgroup";
export const CONTROLLERS = ["memory", "pids", "cpu", "cpuacct", "freezer"] as const;
export type Controller = (typeof CONTROLLERS)[number];

export interface CgroupLimits {
  memoryBytes: number;
  processes: number;
  cpuShares: number;
}

export interface CgroupUsage {
  cpuNs: number;
  memoryBytes: number;
}

export interface CgroupFinalReport extends CgroupUsage {
  peakMemoryBytes: number;
  /** The kernel's OOM killer killed a process because of memory.limit_in_bytes. */
  oomKills: number;
  /** fork()/clone() was refused because of pids.max. */
  pidsMaxHits: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CgroupSet {
  readonly dirs: Record<Controller, string>;

  constructor(
    readonly parent: string,
    readonly name: string,
    /** Who makes, sets and removes the folders (the bwrap driver's helper; default the file system calls). */
    private readonly files: CgroupFiles = fileSystemCgroups,
  ) {
    this.dirs = Object.fromEntries(CONTROLLERS.map((c) => [c, path.join(CGROUP_ROOT, c, parent, name)])) as Record<Controller, string>;
  }

  /** Every cgroup.procs file the sandbox's first process must join before it starts anything. */
  get procsFiles(): string[] {
    return CONTROLLERS.map((c) => path.join(this.dirs[c], "cgroup.procs"));
  }

  async create(limits: CgroupLimits): Promise<void> {
    ensureParents(this.parent);
    const mem = String(limits.memoryBytes);
    const steps: CgroupStep[] = [
      ...CONTROLLERS.map((c): CgroupStep => ({ op: "mkdir", path: this.dirs[c] })),
      // memsw (memory + swap) must stay ≥ memory, so set memory first.
      { op: "write", path: path.join(this.dirs.memory, "memory.limit_in_bytes"), value: mem },
      { op: "write", path: path.join(this.dirs.memory, "memory.memsw.limit_in_bytes"), value: mem }, // absent without swap accounting
      { op: "write", path: path.join(this.dirs.memory, "memory.swappiness"), value: "0" },
      { op: "write", path: path.join(this.dirs.pids, "pids.max"), value: String(limits.processes) },
      { op: "write", path: path.join(this.dirs.cpu, "cpu.shares"), value: String(limits.cpuShares) },
    ];
    const optional = new Set([6, 7]);
    let errors = await this.files.run(steps);
    if (errors.slice(0, CONTROLLERS.length).some((e) => (e as NodeJS.ErrnoException | null)?.code === "ENOENT")) {
      // The parents were removed meanwhile (by hand): make them again, once.
      parentsMade.delete(this.parent);
      ensureParents(this.parent);
      errors = await this.files.run(steps);
    }
    const failed = errors.find((e, i) => e && !optional.has(i));
    if (failed) throw failed;
  }

  /**
   * Changes the limits of a cgroup made earlier (a prepared sandbox gets its run's limits at start).
   * memsw must stay ≥ memory: when raising, memsw goes first; when lowering, memory does.
   * Synchronous: on the path of every run, and a few writes of a cgroup file take microseconds,
   * where five awaited writes (open, write, close each) queue behind the thread pool's other work.
   */
  setLimits(limits: CgroupLimits): void {
    const mem = String(limits.memoryBytes);
    try {
      writeSync(this.dirs.memory, "memory.limit_in_bytes", mem);
      tryWriteSync(this.dirs.memory, "memory.memsw.limit_in_bytes", mem);
    } catch {
      tryWriteSync(this.dirs.memory, "memory.memsw.limit_in_bytes", mem);
      writeSync(this.dirs.memory, "memory.limit_in_bytes", mem);
    }
    writeSync(this.dirs.pids, "pids.max", String(limits.processes));
    writeSync(this.dirs.cpu, "cpu.shares", String(limits.cpuShares));
  }

  /** Zeroes CPU time and peak memory, so a prepared sandbox reports its program's use only. */
  resetCounters(): void {
    for (const [dir, file] of [
      [this.dirs.cpuacct, "cpuacct.usage"],
      [this.dirs.memory, "memory.max_usage_in_bytes"],
      [this.dirs.memory, "memory.memsw.max_usage_in_bytes"],
    ] as const) {
      try {
        fs.writeFileSync(path.join(dir, file), "0");
      } catch {
        // absent without swap accounting
      }
    }
  }

  /** Current CPU time and memory, for stats events and the CPU-time limit. */
  usage(): CgroupUsage {
    return {
      cpuNs: readNumber(this.dirs.cpuacct, "cpuacct.usage"),
      memoryBytes: readNumber(this.dirs.memory, "memory.usage_in_bytes"),
    };
  }

  report(): CgroupFinalReport {
    const oomControl = readText(this.dirs.memory, "memory.oom_control");
    const pidsEvents = readText(this.dirs.pids, "pids.events");
    return {
      ...this.usage(),
      peakMemoryBytes: readNumber(this.dirs.memory, "memory.max_usage_in_bytes"),
      oomKills: Number(/oom_kill (\d+)/.exec(oomControl)?.[1] ?? 0),
      pidsMaxHits: Number(/max (\d+)/.exec(pidsEvents)?.[1] ?? 0),
    };
  }

  pids(): number[] {
    const text = readText(this.dirs.freezer, "cgroup.procs") + readText(this.dirs.memory, "cgroup.procs");
    return [...new Set(text.split("\n").filter(Boolean).map(Number))];
  }

  /**
   * Kills every process in the sandbox except `spare`. Freezing first stops a fork bomb from adding
   * processes between reading the list and sending the signals; SIGKILL is delivered when thawed.
   * The driver spares its own direct child (bwrap's monitor) so that it can reap the sandbox's
   * PID 1 and exit by itself: killed first, it would leave PID 1 a zombie for the host's init.
   */
  async killAll(spare?: number): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = this.pids().filter((p) => p !== spare);
      if (pids.length === 0) return;
      await write(this.dirs.freezer, "freezer.state", "FROZEN").catch(() => undefined);
      for (const pid of this.pids()) {
        if (pid === spare) continue;
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await write(this.dirs.freezer, "freezer.state", "THAWED").catch(() => undefined);
      await sleep(attempt < 5 ? 10 : 50);
    }
  }

  /** Removes the cgroups; right after the last process exits the kernel may still say EBUSY. */
  async remove(): Promise<void> {
    await this.killAll();
    // All five at once first; those still busy again and again, for a while.
    const first = await this.files.run(CONTROLLERS.map((c): CgroupStep => ({ op: "rmdir", path: this.dirs[c] })));
    const results = await Promise.allSettled(
      CONTROLLERS.map((c, i) => {
        const error = first[i];
        if (!error) return Promise.resolve();
        if ((error as NodeJS.ErrnoException).code !== "EBUSY") return Promise.reject(new Error(`cannot remove cgroup ${this.dirs[c]}: ${error.message}`));
        return removeDir(this.dirs[c], c === "freezer");
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/** The engine's parent cgroups, made once per process (the sandboxes' folders go inside them). */
const parentsMade = new Set<string>();
function ensureParents(parent: string): void {
  if (parentsMade.has(parent)) return;
  for (const c of CONTROLLERS) fs.mkdirSync(path.join(CGROUP_ROOT, c, parent), { recursive: true });
  parentsMade.add(parent);
}

async function removeDir(dir: string, isFreezer: boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fsp.rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 100) throw new Error(`cannot remove cgroup ${dir}: ${code}`);
      if (isFreezer) await write(dir, "freezer.state", "THAWED").catch(() => undefined);
      await sleep(20);
    }
  }
}

async function write(dir: string, file: string, value: string): Promise<void> {
  await fsp.writeFile(path.join(dir, file), value);
}

function writeSync(dir: string, file: string, value: string): void {
  fs.writeFileSync(path.join(dir, file), value);
}

/** For files absent without swap accounting. */
function tryWriteSync(dir: string, file: string, value: string): void {
  try {
    writeSync(dir, file, value);
  } catch {
    // absent
  }
}

function readText(dir: string, file: string): string {
  try {
    return fs.readFileSync(path.join(dir, file), "utf8");
  } catch {
    return "";
  }
}

function readNumber(dir: string, file: string): number {
  const n = Number(readText(dir, file).trim());
  return Number.isFinite(n) ? n : 0;
}

/** The cgroup directories under `parent` whose names start with `prefix`, across all controllers. */
export function listCgroups(parent: string, prefix = ""): string[] {
  const found: string[] = [];
  for (const c of CONTROLLERS) {
    const dir = path.join(CGROUP_ROOT, c, parent);
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith(prefix)) found.push(path.join(dir, n));
  }
  return found;
}
