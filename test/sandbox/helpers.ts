/**
 * Helpers for the sandbox tests: a real engine with its own uids, temp root, cache and name
 * prefix, a run that collects its events, and the check that a run left nothing behind.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, inject } from "vitest";
import { RunRequestSchema, type ProgramRunRequestInput, type RunEvent, type RunRequestInput } from "../../lib/protocol";
import type { Engine, RunHandle, RunOptions } from "../../sandbox/api";
import { createEngine, type EngineOptions } from "../../sandbox/index";
import { BwrapDriver, defaultBwrapOptions } from "../../sandbox/drivers/bwrap";
import { DockerDriver, defaultDockerOptions } from "../../sandbox/drivers/docker";
import type { TestDocker } from "./docker-daemon";

export interface TestEngine {
  engine: Engine;
  driver: BwrapDriver | DockerDriver;
  prefix: string;
  uidBase: number;
  concurrency: number;
  tempRoot: string;
  cacheDir: string;
  /** Asserts no cgroup, temp dir or process of this engine's sandboxes remains. */
  expectNothingLeft(): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * A real engine with the bubblewrap driver, or with the docker driver against `docker`'s Engine.
 * Its sandboxes run as uids from `fileUidBase` (distinct per test file) plus this test run's offset
 * (test/global-setup.ts), so two runs of the tests on one machine never share a uid.
 */
export function startTestEngine(fileUidBase: number, options: Partial<EngineOptions> = {}, docker?: TestDocker): TestEngine {
  const uidBase = fileUidBase + inject("uidOffset");
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "osbx-test-"));
  fs.chmodSync(base, 0o711); // the sandbox user must traverse it to reach its workspace
  const tempRoot = path.join(base, "sandboxes");
  const cacheDir = path.join(base, "cache");
  const prefix = `t${fileUidBase.toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  fs.mkdirSync(tempRoot);
  const driver = docker
    ? new DockerDriver({ ...defaultDockerOptions(), docker: docker.docker, image: docker.image, uidBase })
    : new BwrapDriver({ ...defaultBwrapOptions(), tempRoot, uidBase });
  const concurrency = options.concurrency ?? 2;
  // Kernel runs' trees: in the sandbox temp root with bwrap (the driver's default), beside it with docker.
  const kernelTreeRoot = docker ? path.join(base, "kernel-runs") : tempRoot;
  const engine = createEngine({ driver, cacheDir, kernelTreeRoot, namePrefix: prefix, concurrency, ...options });
  return {
    engine,
    driver,
    prefix,
    uidBase,
    concurrency,
    tempRoot,
    cacheDir,
    async expectNothingLeft() {
      // Sandboxes prepared ahead of use wait for the next run (at most a few per slot): not leftovers.
      // Everything else of this engine's runs must be gone.
      let waiting = driver.waiting();
      const isWaiting = (p: string) => waiting.some((name) => p.endsWith(`/${name}`) || p.includes(`/${name}/`));
      // Sandboxes are removed after the answer (a server's run ends for its client before that):
      // give removals under way their time, then look.
      for (let i = 0; i < 150; i++) {
        waiting = driver.waiting();
        if (driver.leftovers(prefix).every(isWaiting)) break;
        await sleep(100);
      }
      // At most 3 shapes per slot, two of each with bubblewrap (the pool's depth), one in containers.
      expect(waiting.length, "prepared sandboxes waiting").toBeLessThanOrEqual(3 * 2 * concurrency);
      expect(driver.leftovers(prefix).filter((p) => !isWaiting(p)), "cgroups and temp dirs of this engine's runs").toEqual([]);
      expect(fs.readdirSync(tempRoot).filter((n) => !waiting.includes(n)), "entries in the sandbox temp root").toEqual([]);
      if (driver instanceof DockerDriver) {
        expect(await driver.labelledContainers(prefix, { exceptWaiting: true }), "labelled containers on the Engine").toEqual([]);
      }
      // Processes are gone when the run's done settles; only a zombie the host's init has not yet
      // reaped could linger for a moment, so allow that moment.
      // (The pool may prepare the next sandboxes meanwhile: ask for the waiting ones each time.)
      const running = () => processesOfUids(uidBase, uidBase + concurrency, [...waiting, ...driver.waiting()]);
      for (let i = 0; i < 30 && running().length > 0; i++) await sleep(100);
      expect(running(), "processes running as a sandbox uid").toEqual([]);
      expect(mountsUnder(tempRoot).filter((line) => !isWaiting(line.split(" ")[4] ?? "")), "workspace tmpfs mounts").toEqual([]);
    },
    async dispose() {
      await engine.shutdown();
      // After shutdown nothing at all is left, prepared sandboxes included.
      expect(driver.leftovers(prefix), "cgroups and temp dirs after shutdown").toEqual([]);
      if (driver instanceof DockerDriver) expect(await driver.labelledContainers(prefix), "containers after shutdown").toEqual([]);
      expect(mountsUnder(tempRoot), "workspace tmpfs mounts after shutdown").toEqual([]);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** PIDs (with their command) whose real uid is in [from, to), except those in the named sandboxes' cgroups. */
export function processesOfUids(from: number, to: number, exceptSandboxes: string[] = []): string[] {
  const found: string[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = fs.readFileSync(`/proc/${name}/status`, "utf8");
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const state = /^State:\s+(.*)$/m.exec(status)?.[1];
      if (exceptSandboxes.length > 0) {
        const cgroups = fs.readFileSync(`/proc/${name}/cgroup`, "utf8");
        if (exceptSandboxes.some((sandbox) => cgroups.includes(`/${sandbox}\n`))) continue;
      }
      if (uid >= from && uid < to) found.push(`${name} ${/^Name:\s+(.*)$/m.exec(status)?.[1]} (${state})`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.split(" ")[4]?.startsWith(`${dir}/`));
}

export interface CollectedRun {
  events: RunEvent[];
  stdout: string;
  stderr: string;
  exit: Extract<RunEvent, { type: "exit" }> | undefined;
  error: Extract<RunEvent, { type: "error" }> | undefined;
  compiled: Extract<RunEvent, { type: "compiled" }> | undefined;
  diagnostics: Extract<RunEvent, { type: "diagnostics" }> | undefined;
}

export interface StartedRun {
  handle: RunHandle;
  /** Events so far; complete after `finished`. */
  collected: CollectedRun;
  finished: Promise<CollectedRun>;
  /** Resolves when an event matching `predicate` arrives. */
  waitFor(predicate: (e: RunEvent) => boolean): Promise<RunEvent>;
}

export function start(engine: Engine, input: RunRequestInput, options?: RunOptions): StartedRun {
  const collected: CollectedRun = {
    events: [],
    stdout: "",
    stderr: "",
    exit: undefined,
    error: undefined,
    compiled: undefined,
    diagnostics: undefined,
  };
  const waiters: Array<{ predicate: (e: RunEvent) => boolean; resolve: (e: RunEvent) => void }> = [];
  const handle = engine.run(RunRequestSchema.parse(input), (event) => {
    collected.events.push(event);
    if (event.type === "stdout") collected.stdout += event.data;
    if (event.type === "stderr") collected.stderr += event.data;
    if (event.type === "exit") collected.exit = event;
    if (event.type === "error") collected.error = event;
    if (event.type === "compiled") collected.compiled = event;
    if (event.type === "diagnostics") collected.diagnostics = event;
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  }, options);
  return {
    handle,
    collected,
    finished: handle.done.then(() => {
      const ends = collected.events.filter((e) => e.type === "exit" || e.type === "error");
      expect(ends, "exactly one exit or error event").toHaveLength(1);
      expect(collected.events.at(-1), "the final event is the last").toBe(ends[0]);
      return collected;
    }),
    waitFor(predicate) {
      const seen = collected.events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve });
        // A run that ends without the awaited event fails the test now, with what it said.
        void handle.done.then(() => reject(new Error(`the run ended without the awaited event: ${JSON.stringify(collected.events).slice(0, 2000)}`)));
      });
    },
  };
}

/** What a failed compile said, for a test's failure message: the outcome, its limit, the compiler's text. */
export function compileReport(run: CollectedRun): string {
  const c = run.compiled;
  return `compile ${c ? `ok=${c.ok} exit=${c.exitCode} limit=${c.limit} ${c.timeMs} ms, ${c.cpuMs} ms CPU` : "missing"}; ${run.exit?.message ?? run.error?.message ?? ""}\n${run.diagnostics?.rendered ?? ""}${c?.stderr ?? ""}`;
}

export async function runToEnd(engine: Engine, input: RunRequestInput): Promise<CollectedRun> {
  return start(engine, input).finished;
}

export const c = (code: string, extra: Partial<ProgramRunRequestInput> = {}): ProgramRunRequestInput => ({
  language: "c",
  files: [{ name: "main.c", content: code }],
  ...extra,
});

export const rust = (code: string, extra: Partial<ProgramRunRequestInput> = {}): ProgramRunRequestInput => ({
  language: "rust",
  files: [{ name: "main.rs", content: code }],
  ...extra,
});
