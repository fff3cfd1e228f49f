/**
 * The sandbox engine: a run request and an event sink in, events out. The WebSocket server, the
 * HTTP API, `npm run check` and the benches all use it through `createEngine`.
 *
 *   const engine = createEngine();            // options and env vars: see EngineOptions, limits.ts
 *   const run = engine.run(request, (event) => send(event));
 *   run.writeStdin("42\n"); run.kill(); await run.done;
 *   await engine.shutdown();                   // kills every run and waits for the cleanup
 *
 * Requests must already be validated by RunRequestSchema (lib/protocol.ts). This module imports
 * only Node, the protocol and its own files: nothing web.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { isKernelRequest, type Language, type RunRequest, type Toolchain as ToolchainInfo } from "../lib/protocol";
import type { Engine, EngineHealth, EventSink, PrewarmOutcome, RunHandle, RunOptions } from "./api";
import { CompileCache } from "./cache";
import { BwrapDriver, defaultBwrapOptions, type BwrapDriverOptions } from "./drivers/bwrap";
import { DockerDriver, defaultDockerOptions, ImageMissingError, type DockerDriverOptions } from "./drivers/docker";
import { buildToolchainImage, toolchainImageName } from "./drivers/docker-image";
import type { SandboxDriver } from "./drivers/driver";
import { Job, type CompileOutcome, type JobOptions } from "./job";
import { KernelJob, warmTreeProblem, type KernelState } from "./kernel-job";
import { loadKernelProfiles, type KernelProfile } from "./kernels/profile";
import { resolveAdmission, resolveLimits, runLimitsFor, type SandboxLimits, type SandboxLimitsInput } from "./limits";
import { SandboxPool } from "./pool";
import { Scheduler } from "./scheduler";
import { ServiceTimes } from "./service-times";
import { AsmToolchain, CppToolchain, CToolchain } from "./toolchains/c";
import { RustToolchain } from "./toolchains/rust";
import type { Toolchain } from "./toolchains/toolchain";

export type { Engine, EngineHealth, EventSink, KernelHealth, PrewarmOutcome, RunHandle, RunOptions } from "./api";
export { defaultLimits, runLimitsFor, resolveLimits, formatBytes, type SandboxLimits, type PhaseLimits } from "./limits";
export { limitMessage, runMessage } from "./job";
export { seccompFilterBytes, blockedSyscallNames } from "./seccomp";
export type { SandboxDriver, SandboxSpec, SandboxResult } from "./drivers/driver";

export interface EngineOptions {
  /** Merged over defaultLimits and SANDBOX_LIMITS (see limits.ts). */
  limits: SandboxLimitsInput;
  /** Sandboxes at once; default SANDBOX_CONCURRENCY or the number of cores. */
  concurrency: number;
  /** A run waits while its estimated wait stays within this; default SANDBOX_MAX_WAIT_SECONDS or 30. */
  maxWaitSeconds: number;
  /** Memory the waiting runs' requests may hold; default SANDBOX_QUEUE_MEMORY_MIB or 64. */
  queueMemoryMiB: number;
  /** Waiting runs per client session before its oldest is replaced; default SANDBOX_CLIENT_WAITING or 4. */
  clientWaiting: number;
  /**
   * The driver; default by SANDBOX_DRIVER: "bwrap" (the default) with `bwrap` options, or "docker"
   * (a DockerDriver with `docker` options against DOCKER_HOST). A course that names its own images
   * (`environments`) runs in containers unless SANDBOX_DRIVER says otherwise.
   */
  driver: SandboxDriver;
  bwrap: Partial<BwrapDriverOptions>;
  docker: Partial<DockerDriverOptions>;
  /**
   * A course's own images per language (content/course.json, see docs/authoring.md); languages not
   * named run in the driver's default image. Only container drivers have images.
   */
  environments: CourseEnvironments;
  /** Compile cache folder and bound (default $TMPDIR/osbyexample-cache, 512 MiB). */
  cacheDir: string;
  cacheMaxBytes: number;
  /** Start of every sandbox name (cgroups, temp dirs); default "run-<random>" per engine. */
  namePrefix: string;
  /** Keep sandboxes prepared ahead of use (sandbox/pool.ts) when the driver can; default true. */
  prepareSandboxes: boolean;
  /** How often `stats` events are sent while a program runs. */
  statsIntervalMs: number;
  /** Kernel profiles for `language: "kernel"`; default loadKernelProfiles() (kernels/osbe + OSBE_KERNELS). */
  kernels: KernelProfile[];
  /**
   * Where kernel runs make their build trees: on the warm trees' file system (hard links) and
   * traversable by the sandbox uids. Default: the bwrap driver's temp root.
   */
  kernelTreeRoot: string;
  /** Where scripts/build-crates.ts built the Rust crates; default OSBE_RUST_CRATES_TARGET or sandbox/toolchains/rust-crates/target. */
  rustCratesDir: string;
}

/** Images a course names, per language (and for the kernel lab). */
export type CourseEnvironments = Partial<Record<Language | "kernel", string>>;

interface ToolchainState {
  toolchain: Toolchain;
  info: ToolchainInfo;
  problem?: string;
  /** The course's image it runs in (undefined: the driver's default), for health its name, and its id (part of the compile cache key). */
  image?: string;
  imageName?: string;
  imageId?: string;
}

/** The driver SANDBOX_DRIVER names (default bwrap; docker when a course names images and SANDBOX_DRIVER is unset). */
export function createDriver(options: Partial<EngineOptions> = {}, env: NodeJS.ProcessEnv = process.env): SandboxDriver {
  const wantsImages = Object.values(options.environments ?? {}).some(Boolean);
  const kind = env.SANDBOX_DRIVER || (wantsImages ? "docker" : "bwrap");
  if (kind === "bwrap") return new BwrapDriver({ ...defaultBwrapOptions(), ...options.bwrap });
  if (kind === "docker") {
    const image = env.SANDBOX_IMAGE || toolchainImageName();
    const defaults = defaultDockerOptions();
    return new DockerDriver({
      ...defaults,
      image,
      // The project's own image is built when the Engine lacks it; an operator's SANDBOX_IMAGE is not.
      provideImage: env.SANDBOX_IMAGE
        ? undefined
        : async (_docker, name) => {
            console.log(`sandbox: the Docker Engine has no image ${name}; building it from Debian packages (once, a few minutes)`);
            await buildToolchainImage(name, env.DOCKER_HOST);
          },
      ...options.docker,
    });
  }
  throw new Error(`SANDBOX_DRIVER must be "bwrap" or "docker", got ${JSON.stringify(kind)}`);
}
export function createEngine(options: Partial<EngineOptions> = {}): Engine {
  const limits: SandboxLimits = resolveLimits(options.limits);
  const admission = resolveAdmission({
    concurrency: options.concurrency,
    maxWaitSeconds: options.maxWaitSeconds,
    queueMemoryMiB: options.queueMemoryMiB,
    clientWaiting: options.clientWaiting,
  });
  const driver = options.driver ?? createDriver(options);
  const environments = options.environments ?? {};
  const cache = new CompileCache(
    options.cacheDir ?? path.join(os.tmpdir(), "osbyexample-cache"),
    options.cacheMaxBytes ?? 512 * 1024 * 1024,
  );
  const compiles = new Map<string, Promise<CompileOutcome>>();
  const failures = new Map<string, Extract<CompileOutcome, { kind: "failed" }>>();
  const times = new ServiceTimes();
  const scheduler = new Scheduler({
    concurrency: admission.concurrency,
    maxWaitMs: admission.maxWaitSeconds * 1000,
    maxQueueBytes: admission.queueMemoryMiB * 1024 * 1024,
    maxWaitingPerSession: admission.clientWaiting,
    // A compile that is cached or under way costs a waiting run nothing more.
    isCompiled: (key) => cache.has(key) || compiles.has(key) || failures.has(key),
  });
  const namePrefix = options.namePrefix ?? `run-${Math.random().toString(36).slice(2, 8)}`;
  // Two waiting per shape with bubblewrap (cheap: two processes and a tmpfs each), so a slot's
  // runs in quick succession (a lecture hall) find one ready; containers stay at one each.
  const pool = new SandboxPool(driver, { namePrefix, depth: driver instanceof BwrapDriver ? 2 : 1 });
  // Jobs start their sandboxes through the pool: prepared ones where it has them, fresh otherwise.
  const sandboxes: SandboxDriver = options.prepareSandboxes === false ? driver : pool;
  const toolchains = new Map<Language, ToolchainState>();
  const jobs = new Set<Job | KernelJob>();
  // Profiles are configuration: a broken OSBE_KERNELS is reported by health() and by kernel runs,
  // and does not stop C and Rust.
  let kernelsProblem: string | undefined;
  let profiles: KernelProfile[] = [];
  try {
    profiles = options.kernels ?? loadKernelProfiles();
  } catch (error) {
    kernelsProblem = (error as Error).message;
  }
  const kernels: KernelState[] = profiles.map((profile) => ({ profile }));
  const kernelTreeRoot =
    options.kernelTreeRoot ?? (driver instanceof BwrapDriver ? driver.options.tempRoot : path.join(os.tmpdir(), "osbyexample-kernel-runs"));
  const kernelToolchain: ToolchainInfo = { name: "cargo", version: "" };
  const rust = new RustToolchain(undefined, options.rustCratesDir);
  let defaultImage: { image: string; id: string } | undefined;
  let runCounter = 0;
  let closed = false;

  const ready = (async () => {
    await driver.prepare();
    await cache.open();
    if (driver instanceof DockerDriver) {
      const info = await driver.environment(undefined);
      defaultImage = { image: info.image, id: info.id };
    }
    for (const toolchain of [new CToolchain(), new CppToolchain(), new AsmToolchain(), rust] as Toolchain[]) {
      const state: ToolchainState = { toolchain, info: { name: toolchain.name, version: "" } };
      try {
        if (driver instanceof DockerDriver) {
          // The compiler of the image the runs use, not the host's.
          state.image = environments[toolchain.language];
          const info = await driver.environment(state.image);
          state.imageName = info.image;
          state.imageId = info.id;
          const [out] = await driver.probe(state.image, [toolchain.versionCommand]);
          if (!out) throw new Error(`no ${toolchain.versionCommand[0]} in image ${info.image}`);
          state.info.version = toolchain.parseVersion(out);
          toolchain.adoptVersion?.(state.info.version);
        } else state.info.version = await toolchain.detectVersion();
      } catch (error) {
        const message = (error as Error).message.split("\n")[0];
        state.problem =
          error instanceof ImageMissingError && environments[toolchain.language]
            ? `the course's image for ${toolchain.language}: ${message}`
            : `${toolchain.name} is not available: ${message}`;
      }
      toolchains.set(toolchain.language, state);
    }
    if (kernels.length > 0) {
      await fs.promises.mkdir(kernelTreeRoot, { recursive: true, mode: 0o711 });
      if (driver instanceof DockerDriver) {
        const image = environments.kernel;
        const version = await driver
          .environment(image)
          .then((info) => driver.probe(info.image, [["/usr/bin/cargo", "--version"]]))
          .then(([out]) => parseCargoVersion(out ?? ""))
          .catch(() => "unknown");
        kernelToolchain.version = version;
      } else kernelToolchain.version = await cargoVersion().catch(() => "unknown");
    }
    if (sandboxes === pool && !closed) {
      // Every program run uses these two shapes per slot: have them waiting before the first run.
      const runWorkspace = runLimitsFor(limits, undefined).workspaceMiB;
      for (let slot = 0; slot < admission.concurrency; slot++) {
        const environment = environments.c ? { environment: environments.c } : {};
        pool.keepWarm({ slot, workspaceMiB: limits.compile.workspaceMiB, readOnlyBinds: [], readWriteBinds: [], ...environment });
        pool.keepWarm({ slot, workspaceMiB: runWorkspace, readOnlyBinds: [], readWriteBinds: [], ...environment });
        // Rust compiles see the prebuilt crates: the same bind for all of them, so also kept warm.
        const rustBinds = rust.compileCommand({ language: "rust", files: [], flags: [], args: [] }).readOnlyBinds;
        const rustEnvironment = environments.rust ? { environment: environments.rust } : {};
        if (rustBinds) pool.keepWarm({ slot, workspaceMiB: limits.compile.workspaceMiB, readOnlyBinds: rustBinds, readWriteBinds: [], ...rustEnvironment });
      }
    }
  })();
  ready.catch(() => undefined); // reported by health() and by each run

  function start(request: RunRequest, sink: EventSink, jobOptions: JobOptions): Job | KernelJob | null {
    if (closed) {
      sink({ type: "error", code: "busy", message: "the sandbox engine is shutting down; try again" });
      return null;
    }
    const name = `${namePrefix}-${(runCounter++).toString(36)}`;
    const job: Job | KernelJob = isKernelRequest(request)
      ? new KernelJob(
          {
            driver: sandboxes,
            scheduler,
            cache,
            ready,
            kernels,
            toolchain: kernelToolchain,
            treeRoot: kernelTreeRoot,
            environment: environments.kernel,
            maxima: limits.maxima,
            cpuShares: limits.run.cpuShares,
            statsIntervalMs: options.statsIntervalMs ?? 1000,
            times,
            problem: kernelsProblem,
          },
          request,
          sink,
          name,
          jobOptions,
        )
      : new Job(
          {
            driver: sandboxes,
            scheduler,
            cache,
            limits,
            ready,
            statsIntervalMs: options.statsIntervalMs ?? 1000,
            times,
            compiles,
            failures,
            toolchain(language) {
              const state = toolchains.get(language);
              if (!state) return { problem: `no toolchain for ${language}` };
              if (state.problem) return { problem: state.problem };
              return { toolchain: state.toolchain, info: state.info, image: state.image, imageId: state.imageId };
            },
          },
          request,
          sink,
          name,
          jobOptions,
        );
    // shutdown() waits for every job it finds here.
    jobs.add(job);
    void job.done.finally(() => jobs.delete(job));
    return job;
  }

  return {
    run(request: RunRequest, sink: EventSink, runOptions: RunOptions = {}): RunHandle {
      return start(request, sink, runOptions) ?? { writeStdin() {}, closeStdin() {}, kill() {}, done: Promise.resolve() };
    },

    async prewarm(request: RunRequest): Promise<PrewarmOutcome> {
      const job = start(request, () => undefined, { background: true, compileOnly: true });
      if (!job) return "failed";
      await job.done;
      return job.prewarmOutcome;
    },

    async health(): Promise<EngineHealth> {
      let problem: string | undefined;
      await ready.catch((error: Error) => (problem = error.message));
      return {
        ready: !problem && !closed && [...toolchains.values()].every((t) => !t.problem),
        driver: driver.name,
        ...(defaultImage ? { image: defaultImage } : {}),
        toolchains: [...toolchains.values()].map((t) => ({
          language: t.toolchain.language,
          name: t.info.name,
          version: t.info.version,
          ...(t.imageName ? { image: t.imageName } : {}),
          available: !t.problem && !problem,
          ...(t.problem || problem ? { problem: t.problem ?? problem } : {}),
        })),
        running: scheduler.runningCount,
        queued: scheduler.queued,
        backgroundQueued: scheduler.backgroundQueued,
        maxConcurrent: scheduler.concurrency,
        maxWaitMs: scheduler.maxWaitMs,
        estimatedWaitMs: Math.round(scheduler.estimatedWaitMs()),
        maxQueueBytes: scheduler.maxQueueBytes,
        preparedSandboxes: pool.preparedCount,
        sandboxStarts: { ...pool.starts },
        kernels: kernels.map(({ profile }) => {
          const why = problem ?? warmTreeProblem(profile);
          return {
            name: profile.name,
            description: profile.description,
            available: !why,
            ...(why ? { problem: why } : {}),
            replaceableFiles: profile.replaceableFiles.map((f) => ({ path: f.path, lesson: f.lesson })),
          };
        }),
        ...(kernelsProblem ? { kernelsProblem } : {}),
        rustCrates: (rust.crates?.crates ?? []).map((c) => ({ name: c.name, version: c.version })),
        ...(rust.cratesProblem ? { rustCratesProblem: rust.cratesProblem } : {}),
      };
    },

    async shutdown(): Promise<void> {
      closed = true;
      const all = [...jobs];
      for (const job of all) job.kill();
      await Promise.all(all.map((job) => job.done));
      await pool.close();
      await driver.close?.();
    },
  };
}

async function cargoVersion(): Promise<string> {
  const { stdout } = await promisify(execFile)("/usr/bin/cargo", ["--version"], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
  return parseCargoVersion(stdout);
}

/** "cargo 1.96.0 (... 2026-05-25) (built from a source tarball)" → "1.96.0 (... 2026-05-25)" */
function parseCargoVersion(stdout: string): string {
  return stdout.trim().replace(/^cargo /, "").replace(/ \(built from a source tarball\)$/, "");
}
