/**
 * The docker driver: each sandbox is one container of a toolchain image, run through the Docker
 * Engine API (dockerode; DOCKER_HOST, default the local socket), with the same limits and the
 * same words for how it ended as the bubblewrap driver.
 *
 * What holds a limit, in the container:
 *   memory and swap   HostConfig.Memory = MemorySwap (cgroup memory + memsw), swappiness 0;
 *                     the workspace tmpfs is charged to it as well
 *   processes         HostConfig.PidsLimit (cgroup pids.max); ulimit nproc a little above it
 *   CPU time          RLIMIT_CPU per process (set by container-init) and the container cgroup's
 *                     cpuacct.usage for the whole tree, reported by container-init every 100 ms
 *   CPU share         HostConfig.CpuShares
 *   wall clock        the engine's timer, then container-init kills the tree (docker kill if not)
 *   output            the engine stops the program beyond `outputBytes` per stream
 *   file size, open files, core dumps   ulimits fsize, nofile, core (HostConfig.Ulimits) and the
 *                     run's own rlimits set by container-init before exec
 *   workspace         one tmpfs at /work with a size; the image links /tmp, /out, /program into it
 *   isolation         NetworkMode none, read-only root file system, CapDrop ALL, no-new-privileges,
 *                     the project's seccomp profile (seccomp.ts), a non-root uid per slot, its own
 *                     pid/ipc/uts namespaces; no Docker socket or host path inside (except a kernel
 *                     run's build tree, bound like bwrap's readWriteBinds)
 * All of this holds on a remote Engine too (container-init reads the figures from inside the
 * container, files travel through the attached stream); only binds of host paths (the kernel
 * lab's build trees) need the Engine on the server's machine.
 *
 * A container is used once. Start-up (create, attach, start) costs 100-200 ms here, so containers
 * can be prepared ahead: created and started, container-init waiting on stdin for its work
 * (PreparedContainer); the run then costs a few frames on an open stream. Every container carries
 * the project's label and its owner (host, pid): containers of a server that died are removed when
 * the next one starts, and those of this server when it shuts down. AutoRemove removes a container
 * as soon as container-init exits, which it does when the engine's stream closes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import Docker from "dockerode";
import type { LimitName } from "../../lib/protocol";
import { dockerSeccompProfile } from "../seccomp";
import { buildContainerInit } from "./container-init";
import {
  shapeKey,
  type PreparedSandbox,
  type SandboxDriver,
  type SandboxProcess,
  type SandboxResult,
  type SandboxShape,
  type SandboxSpec,
  type SandboxUsage,
} from "./driver";
import { describeEnd, type FinalFigures, type ProgramEnd, resultWithoutRun } from "./outcome";

const MiB = 1024 * 1024;
export const SANDBOX_LABEL = "org.osbyexample.sandbox";
export const OWNER_LABEL = "org.osbyexample.owner";
/** Where the volume holding container-init is mounted in every container. */
const INIT_DIR = "/.osbyexample";
/** After the program ended, how long the last frames may take. */
const DRAIN_MS = 2000;
/** How long container-init has to report after a kill before the container is killed from outside. */
const KILL_GRACE_MS = 2000;
/**
 * ulimit nproc counts every process of the uid on the host (all containers of a slot): well above
 * pids.max, so that the cgroup's limit is the one a fork bomb meets (and is reported).
 */
const NPROC_AT_LEAST = 512;
/** Limits a prepared container starts with before its shape has been used (then: the last run's). */
const FIRST_LIMITS = { memoryMiB: 512, processes: 64, cpuShares: 512, openFiles: 256, fileSizeMiB: 64 };
/** container-init takes 20 s without a frame as the engine being gone (a crash); this keeps it waiting. */
const HEARTBEAT_MS = 5000;
/** The image's own folders that link into the workspace (deploy/images/toolchain/layout.sh). */
const LINKED_DIRS = ["tmp", "out", "program"] as const;

export interface DockerDriverOptions {
  /** The Engine; default from DOCKER_HOST (dockerode reads it), else /var/run/docker.sock. */
  docker: Docker;
  /** The image of sandboxes whose spec names no environment. */
  image: string;
  /** Sandbox slot N runs as uid/gid uidBase+N. */
  uidBase: number;
  /** Where container-init is built on the server's machine. */
  helperDir: string;
  /** Called when the default image is missing, to make it (npm start builds it offline); otherwise prepare() fails. */
  provideImage?: (docker: Docker, image: string) => Promise<void>;
}

export const defaultDockerOptions = (): DockerDriverOptions => ({
  docker: new Docker(),
  image: process.env.SANDBOX_IMAGE || "osbyexample-toolchain:latest",
  uidBase: 300_000,
  helperDir: path.join(os.tmpdir(), "osbyexample-helpers"),
});

/** What a probe found in an image: how its folders are laid out and its tools' version lines. */
export interface EnvironmentInfo {
  image: string;
  /** The image's id (sha256:…): part of the compile cache key, so another image never reuses a binary. */
  id: string;
  /** "linked": /tmp, /out, /program point into /work (one workspace); "separate": three more tmpfs mounts. */
  layout: "linked" | "separate";
}

export class ImageMissingError extends Error {}

/** The Engine's address as a person reads it, for messages. */
export function engineAddress(): string {
  return process.env.DOCKER_HOST || "unix:///var/run/docker.sock";
}

export class DockerDriver implements SandboxDriver {
  readonly name = "docker";
  readonly docker: Docker;
  /** This driver, as its containers' owner label says: host, pid, the pid's start time, and which driver of the process. */
  readonly owner = `${os.hostname()} ${process.pid} ${processStartTime(process.pid)} ${Math.random().toString(36).slice(2, 10)}`;
  private initVolume = "";
  private readonly seccomp = dockerSeccompProfile();
  private readonly environments = new Map<string, Promise<EnvironmentInfo>>();
  /** Containers created and not yet known to be removed, by name. */
  private readonly live = new Map<string, Docker.Container>();
  /** Prepared containers not yet given work. */
  private readonly unused = new Set<PreparedContainer>();
  /** The limits the last run of each shape had: the next prepared container of that shape gets them. */
  private readonly lastLimits = new Map<string, ContainerLimits>();

  constructor(readonly options: DockerDriverOptions) {
    this.docker = options.docker;
  }

  async prepare(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw new Error(`cannot reach the Docker Engine at ${engineAddress()}: ${(error as Error).message}`);
    }
    await this.removeStale();
    const init = await buildContainerInit(this.options.helperDir);
    this.initVolume = await this.ensureInitVolume(init.path, init.hash);
    await this.environment(undefined);
  }

  /** The image a spec runs in, probed once: its id and layout. Rejects with ImageMissingError naming it. */
  environment(image: string | undefined): Promise<EnvironmentInfo> {
    const name = image ?? this.options.image;
    let found = this.environments.get(name);
    if (!found) {
      found = this.probeImage(name);
      this.environments.set(name, found);
      found.catch(() => this.environments.delete(name)); // built or pulled later: try again
    }
    return found;
  }

  start(spec: SandboxSpec): SandboxProcess {
    if (!/^[a-z0-9-]{1,80}$/.test(spec.name)) throw new Error(`invalid sandbox name: ${spec.name}`);
    if (!this.initVolume) throw new Error("DockerDriver.prepare() has not run");
    const container = new PreparedContainer(this, spec.name, containerShapeOf(spec));
    return container.start(spec);
  }

  /** A container created and started ahead of use, waiting for one run of this shape. */
  prepareSandbox(name: string, shape: SandboxShape): PreparedSandbox {
    if (!/^[a-z0-9-]{1,80}$/.test(name)) throw new Error(`invalid sandbox name: ${name}`);
    const limits = this.lastLimits.get(shapeKey(shape)) ?? FIRST_LIMITS;
    return new PreparedContainer(this, name, { ...shape, ...limits });
  }

  /** Ids of the prepared containers waiting for work (for tests: they are not leftovers). */
  waiting(): string[] {
    return [...this.unused].map((c) => c.id).filter((id): id is string => id !== null);
  }

  /**
   * Runs trusted commands (version queries) in an image, one after another in one sandbox, and
   * returns each one's stdout (empty when it failed).
   */
  async probe(image: string | undefined, commands: string[][]): Promise<string[]> {
    const separator = `--osbyexample-${Math.random().toString(36).slice(2)}--`;
    const script = commands.map((argv) => `${argv.map(shellQuote).join(" ")} 2>/dev/null; echo ${separator}`).join("\n");
    let stdout = "";
    const result = await this.start({
      name: `probe-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
      slot: 0,
      program: "/bin/sh",
      argv0: "sh",
      args: ["-c", script],
      files: [],
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", HOME: "/work" },
      environment: image,
      limits: { memoryMiB: 256, cpuSeconds: 10, wallSeconds: 30, processes: 32, outputBytes: MiB, fileSizeMiB: 1, workspaceMiB: 16, openFiles: 64, cpuShares: 1024 },
      closeStdinAfterInput: true,
      onStdout: (chunk) => (stdout += chunk.toString()),
      onStderr: () => undefined,
    }).result;
    if (result.failure) throw new Error(result.failure);
    return stdout.split(`${separator}\n`).slice(0, commands.length).map((s) => s.trim());
  }

  sandboxUser(slot: number): { uid: number; gid: number } {
    return { uid: this.options.uidBase + slot, gid: this.options.uidBase + slot };
  }

  /** Containers of this driver still there whose names start with `prefix`, prepared ones waiting for work excepted. */
  leftovers(prefix: string): string[] {
    const waiting = new Set([...this.unused].map((c) => c.name));
    return [...this.live.keys()].filter((name) => name.startsWith(prefix) && !waiting.has(name));
  }

  /** Containers on the Engine with the project's label whose name starts with `prefix` (for tests and health). */
  async labelledContainers(prefix = "", options: { exceptWaiting?: boolean } = {}): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
    // Prepared ones are known by name from the moment they are being created.
    const waiting = new Set(options.exceptWaiting ? [...this.unused].map((c) => `osbe-${c.name}`) : []);
    return list
      .map((c) => (c.Names[0] ?? "").replace(/^\//, ""))
      .filter((n) => n.startsWith(`osbe-${prefix}`) && !waiting.has(n));
  }

  /** Removes every container this driver made that still exists (shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.live.values()].map((c) => removeContainer(c)));
    this.live.clear();
    const mine = await this.docker.listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${this.owner}`] } }).catch(() => []);
    await Promise.all(mine.map((c) => removeContainer(this.docker.getContainer(c.Id))));
  }

  /** @internal */ track(name: string, container: Docker.Container | null): void {
    if (container) this.live.set(name, container);
    else this.live.delete(name);
  }

  /** @internal */ trackUnused(container: PreparedContainer, unused: boolean): void {
    if (unused) this.unused.add(container);
    else this.unused.delete(container);
  }

  /** @internal */ rememberLimits(spec: SandboxSpec): void {
    const { memoryMiB, processes, cpuShares, openFiles, fileSizeMiB } = spec.limits;
    const shape: SandboxShape = {
      slot: spec.slot,
      workspaceMiB: spec.limits.workspaceMiB,
      readOnlyBinds: spec.readOnlyBinds ?? [],
      readWriteBinds: spec.readWriteBinds ?? [],
      ...(spec.environment ? { environment: spec.environment } : {}),
    };
    this.lastLimits.set(shapeKey(shape), { memoryMiB, processes, cpuShares, openFiles, fileSizeMiB });
  }

  /** @internal */ createOptions(name: string, shape: ContainerShape, env: EnvironmentInfo): Docker.ContainerCreateOptions {
    const uid = this.options.uidBase + shape.slot;
    const tmpfs = (sizeMiB: number) => `rw,exec,nosuid,nodev,size=${sizeMiB * MiB},mode=0755,uid=${uid},gid=${uid}`;
    const Tmpfs: Record<string, string> = { "/work": tmpfs(shape.workspaceMiB) };
    if (env.layout === "separate") for (const dir of LINKED_DIRS) Tmpfs[`/${dir}`] = tmpfs(shape.workspaceMiB);
    const ulimit = (Name: string, value: number) => ({ Name, Soft: value, Hard: value });
    return {
      name: `osbe-${name}`,
      Image: env.id,
      Entrypoint: [`${INIT_DIR}/container-init`],
      Cmd: [],
      Env: [],
      User: `${uid}:${uid}`,
      WorkingDir: "/",
      Hostname: "sandbox",
      Labels: { [SANDBOX_LABEL]: "1", [OWNER_LABEL]: this.owner },
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: true,
      StdinOnce: true,
      Tty: false,
      NetworkDisabled: true,
      HostConfig: {
        NetworkMode: "none",
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges", `seccomp=${this.seccomp}`],
        Memory: shape.memoryMiB * MiB,
        MemorySwap: shape.memoryMiB * MiB,
        MemorySwappiness: 0,
        PidsLimit: shape.processes,
        CpuShares: shape.cpuShares,
        Ulimits: [
          ulimit("nofile", shape.openFiles),
          ulimit("nproc", Math.max(NPROC_AT_LEAST, 2 * shape.processes)),
          ulimit("fsize", shape.fileSizeMiB * MiB),
          ulimit("core", 0),
        ],
        Tmpfs,
        Mounts: [
          { Type: "volume", Source: this.initVolume, Target: INIT_DIR, ReadOnly: true },
          ...shape.readOnlyBinds.map((b) => ({ Type: "bind" as const, Source: b.host, Target: b.sandbox, ReadOnly: true })),
          ...shape.readWriteBinds.map((b) => ({ Type: "bind" as const, Source: b.host, Target: b.sandbox, ReadOnly: false })),
        ],
        IpcMode: "private",
        AutoRemove: true,
        LogConfig: { Type: "none", Config: {} },
      },
    };
  }

  /**
   * Removes containers with the project's label left by a server that died: same host, and the
   * owner process is gone. Containers of live servers (another engine on this Engine) stay.
   */
  private async removeStale(): Promise<void> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [SANDBOX_LABEL] } });
    const host = os.hostname();
    await Promise.all(
      list
        .filter((c) => {
          const [ownerHost, pid, started] = (c.Labels[OWNER_LABEL] ?? "").split(" ");
          if (ownerHost !== host) return false;
          return processStartTime(Number(pid)) !== started;
        })
        .map((c) => removeContainer(this.docker.getContainer(c.Id))),
    );
  }

  /**
   * A volume holding container-init, made once per init version on each Engine. A second, empty
   * volume marks it complete (volume labels cannot change), so a later start never rewrites the
   * file under running containers.
   */
  private async ensureInitVolume(binary: string, hash: string): Promise<string> {
    const name = `osbyexample-init-${hash}`;
    const marker = `${name}-complete`;
    if (await this.docker.getVolume(marker).inspect().then(() => true, () => false)) return name;
    await this.docker.createVolume({ Name: name, Labels: { [SANDBOX_LABEL]: "init" } }).catch(() => undefined);
    // Filled through a short-lived container of the default image (any image with a file system will do).
    const filler = await this.docker.createContainer({
      Image: await this.defaultImageId(),
      Cmd: ["/bin/true"],
      Labels: { [SANDBOX_LABEL]: "1", [OWNER_LABEL]: this.owner },
      HostConfig: { NetworkMode: "none", Mounts: [{ Type: "volume", Source: name, Target: "/v" }] },
    });
    try {
      await filler.putArchive(tarOfOneFile("container-init", fs.readFileSync(binary), 0o555), { path: "/v" });
    } finally {
      await removeContainer(filler);
    }
    await this.docker.createVolume({ Name: marker, Labels: { [SANDBOX_LABEL]: "init" } }).catch(() => undefined);
    return name;
  }

  private async defaultImageId(): Promise<string> {
    const image = this.options.image;
    try {
      return (await this.docker.getImage(image).inspect()).Id;
    } catch {
      if (!this.options.provideImage) {
        throw new ImageMissingError(`the Docker Engine at ${engineAddress()} has no image ${image} (build it with deploy/images/build-offline.sh)`);
      }
      await this.options.provideImage(this.docker, image);
      return (await this.docker.getImage(image).inspect()).Id;
    }
  }

  private async probeImage(image: string): Promise<EnvironmentInfo> {
    let id: string;
    if (image === this.options.image) id = await this.defaultImageId();
    else {
      try {
        id = (await this.docker.getImage(image).inspect()).Id;
      } catch {
        throw new ImageMissingError(`image ${image} does not exist in the Docker Engine at ${engineAddress()}`);
      }
    }
    // The layout decides the mounts, so the probe itself runs with /work only.
    const provisional: EnvironmentInfo = { image, id, layout: "separate" };
    this.environments.set(image, Promise.resolve(provisional));
    const [links] = await this.probe(image, [["/bin/sh", "-c", LINKED_DIRS.map((d) => `readlink /${d}`).join(";")]]);
    const linked = links === LINKED_DIRS.map((d) => `work/.${d}`).join("\n");
    const info: EnvironmentInfo = { image, id, layout: linked ? "linked" : "separate" };
    this.environments.set(image, Promise.resolve(info));
    return info;
  }
}

/** Limits a container is created with; memory, pids and CPU share can be updated when it starts. */
interface ContainerLimits {
  memoryMiB: number;
  processes: number;
  cpuShares: number;
  /** ulimits: the run's own values are set by container-init, within these. */
  openFiles: number;
  fileSizeMiB: number;
}

/** What a container fixes when it is created: the sandbox shape and its first limits. */
export type ContainerShape = SandboxShape & ContainerLimits;

export function containerShapeOf(spec: SandboxSpec): ContainerShape {
  const { limits } = spec;
  return {
    slot: spec.slot,
    environment: spec.environment,
    workspaceMiB: limits.workspaceMiB,
    memoryMiB: limits.memoryMiB,
    processes: limits.processes,
    cpuShares: limits.cpuShares,
    openFiles: limits.openFiles,
    fileSizeMiB: limits.fileSizeMiB,
    readOnlyBinds: spec.readOnlyBinds ?? [],
    readWriteBinds: spec.readWriteBinds ?? [],
  };
}

type Frame = { type: string; payload: Buffer };

/**
 * One container: created, attached and started at construction; `ready` once container-init
 * waits for work; `start(spec)` once. Its removal is `removed` (after the run, or discard()).
 */
export class PreparedContainer implements PreparedSandbox {
  readonly ready: Promise<void>;
  spent = false;
  /** The container's id once created. */
  id: string | null = null;
  private container: Docker.Container | null = null;
  private stream: Duplex | null = null;
  private env: EnvironmentInfo | null = null;
  private buffered: Buffer = Buffer.alloc(0);
  private initStderr = "";
  private onFrame: (frame: Frame) => void = () => undefined;
  private ended = false;
  private onEnd: () => void = () => undefined;
  private removal: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly createdAt = performance.now();

  constructor(
    private readonly driver: DockerDriver,
    readonly name: string,
    readonly shape: ContainerShape,
  ) {
    this.driver.trackUnused(this, true);
    this.ready = this.create();
    this.ready.catch(() => {
      this.spent = true;
      this.driver.trackUnused(this, false);
    });
  }

  /** The container's start-up in milliseconds, for benches. */
  startupMs = 0;

  private async create(): Promise<void> {
    this.env = await this.driver.environment(this.shape.environment);
    const container = await this.driver.docker.createContainer(this.driver.createOptions(this.name, this.shape, this.env));
    this.container = container;
    this.id = container.id;
    this.driver.track(this.name, container);
    if (this.removal) throw new Error("discarded before it was ready");
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    this.stream = stream;
    stream.on("data", (chunk: Buffer) => this.demux(chunk));
    this.heartbeat = setInterval(() => this.send("H"), HEARTBEAT_MS);
    this.heartbeat.unref();
    stream.on("error", () => this.end());
    stream.on("end", () => this.end());
    stream.on("close", () => this.end());
    const sawReady = new Promise<void>((resolve, reject) => {
      this.onFrame = (frame) => {
        if (frame.type === "R") resolve();
      };
      this.onEnd = () => reject(new Error(`the container ended before it was ready${this.initStderr ? `: ${this.initStderr.trim()}` : ""}`));
    });
    await container.start();
    await sawReady;
    this.startupMs = performance.now() - this.createdAt;
  }

  /** Docker's multiplexed stream: 8-byte headers (1 stdout, 2 stderr); our frames ride on stdout. */
  private demux(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    let offset = 0;
    const frames: Buffer[] = [];
    while (this.buffered.length - offset >= 8) {
      const size = this.buffered.readUInt32BE(offset + 4);
      if (this.buffered.length - offset < 8 + size) break;
      const body = this.buffered.subarray(offset + 8, offset + 8 + size);
      if (this.buffered[offset] === 2) {
        if (this.initStderr.length < 1024) this.initStderr += body.toString();
      } else frames.push(body);
      offset += 8 + size;
    }
    this.buffered = this.buffered.subarray(offset);
    if (frames.length) this.parseFrames(frames);
  }

  private pending: Buffer = Buffer.alloc(0);
  private parseFrames(bodies: Buffer[]): void {
    this.pending = Buffer.concat([this.pending, ...bodies]);
    let offset = 0;
    while (this.pending.length - offset >= 5) {
      const size = this.pending.readUInt32BE(offset + 1);
      if (this.pending.length - offset < 5 + size) break;
      const type = String.fromCharCode(this.pending[offset]!);
      this.onFrame({ type, payload: this.pending.subarray(offset + 5, offset + 5 + size) });
      offset += 5 + size;
    }
    this.pending = this.pending.subarray(offset);
  }

  private end(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }

  /** @internal */ send(type: string, payload: Buffer | string = Buffer.alloc(0)): void {
    const body = typeof payload === "string" ? Buffer.from(payload) : payload;
    const header = Buffer.alloc(5);
    header.write(type, 0, "latin1");
    header.writeUInt32BE(body.length, 1);
    this.stream?.write(Buffer.concat([header, body]));
  }

  /** @internal */ get writableLength(): number {
    return this.stream?.writableLength ?? 0;
  }

  /** @internal */ listen(onFrame: (frame: Frame) => void, onEnd: () => void): void {
    this.onFrame = onFrame;
    this.onEnd = onEnd;
    if (this.ended) onEnd();
  }

  /** @internal */ get stderrText(): string {
    return this.initStderr;
  }

  /** @internal */ get environmentInfo(): EnvironmentInfo | null {
    return this.env;
  }

  /** @internal */ async killFromOutside(): Promise<void> {
    await this.container?.kill().catch(() => undefined);
  }

  /** @internal */ async update(spec: SandboxSpec): Promise<void> {
    const { limits } = spec;
    if (limits.memoryMiB === this.shape.memoryMiB && limits.processes === this.shape.processes && limits.cpuShares === this.shape.cpuShares) return;
    await this.container?.update({
      Memory: limits.memoryMiB * MiB,
      MemorySwap: limits.memoryMiB * MiB,
      PidsLimit: limits.processes,
      CpuShares: limits.cpuShares,
    });
  }

  start(spec: SandboxSpec): SandboxProcess {
    if (this.spent) throw new Error(`container ${this.name} was already used`);
    this.spent = true;
    this.driver.trackUnused(this, false);
    this.driver.rememberLimits(spec);
    return new DockerSandbox(this, spec);
  }

  /** Removes the container (used or not); settles when it is gone. */
  remove(): Promise<void> {
    this.removal ??= (async () => {
      this.spent = true;
      this.driver.trackUnused(this, false);
      await this.ready.catch(() => undefined);
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.stream?.destroy();
      if (this.container) await removeContainer(this.container);
      this.driver.track(this.name, null);
    })();
    return this.removal;
  }

  discard(): Promise<void> {
    return this.remove();
  }
}

class DockerSandbox implements SandboxProcess {
  readonly result: Promise<SandboxResult>;
  readonly removed: Promise<void>;
  private stopReason: LimitName | "killed" | null = null;
  private running = false;
  private finished = false;
  private usageNow: SandboxUsage = { cpuMs: 0, memoryBytes: 0 };
  private readonly truncated = { stdout: false, stderr: false };
  private readonly seen = { stdout: 0, stderr: 0 };
  private stdinClosed = false;
  private pendingStdin: string[] = [];
  private killTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly container: PreparedContainer,
    private readonly spec: SandboxSpec,
  ) {
    this.result = this.lifecycle();
    // After the result: the answer never waits for the container's removal.
    this.removed = this.result.then(
      () => container.remove(),
      () => container.remove(),
    ).catch(() => undefined);
  }

  writeStdin(data: string): void {
    if (this.stdinClosed || this.finished) return;
    if (!this.running) {
      if (this.pendingStdin.length < 256) this.pendingStdin.push(data);
      return;
    }
    // A program that does not read its input must not make the server buffer without end.
    if (this.container.writableLength > MiB) return;
    this.container.send("I", data);
  }

  closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    if (this.running && !this.finished) this.container.send("C");
  }

  kill(): void {
    this.stop("killed");
  }

  usage(): SandboxUsage {
    return this.usageNow;
  }

  private stop(reason: LimitName | "killed"): void {
    if (!this.stopReason) this.stopReason = reason;
    if (!this.running || this.finished || this.killTimer) return;
    this.container.send("K");
    // container-init reports after killing the tree; if it cannot, the container goes from outside.
    this.killTimer = setTimeout(() => void this.container.killFromOutside(), KILL_GRACE_MS);
  }

  private async lifecycle(): Promise<SandboxResult> {
    try {
      return await this.execute();
    } catch (error) {
      this.finished = true;
      if (this.stopReason === "killed") return resultWithoutRun();
      return { ...resultWithoutRun(), signal: null, killed: false, failure: (error as Error).message };
    }
  }

  private async execute(): Promise<SandboxResult> {
    const { spec } = this;
    try {
      await this.container.ready;
    } catch (error) {
      if (this.stopReason === "killed") return resultWithoutRun();
      throw error;
    }
    if (this.stopReason === "killed") return resultWithoutRun();
    await this.container.update(spec);
    const env = this.container.environmentInfo!;

    let end: ProgramEnd = null;
    let figures: FinalFigures = { cpuNs: 0, peakMemoryBytes: 0, oomKills: 0, pidsMaxHits: 0, workspaceFreeBytes: -1 };
    let retrieved: Buffer | null | undefined;
    let statusSeen = false;
    let startedAt = 0;
    let wallMs = 0;
    const done = new Promise<void>((resolve) => {
      const finishIfComplete = () => {
        if (statusSeen && (!spec.retrieve || retrieved !== undefined || end?.kind !== "exit" || end.code !== 0)) resolve();
      };
      this.container.listen(
        (frame) => {
          switch (frame.type) {
            case "O":
              this.pump("stdout", frame.payload, spec.onStdout);
              break;
            case "E":
              this.pump("stderr", frame.payload, spec.onStderr);
              break;
            case "U": {
              const [cpuNs, memory] = frame.payload.toString().split(" ").map(Number);
              this.usageNow = { cpuMs: (cpuNs ?? 0) / 1e6, memoryBytes: memory ?? 0 };
              if (this.usageNow.cpuMs > spec.limits.cpuSeconds * 1000) this.stop("cpu");
              break;
            }
            case "S": {
              wallMs = performance.now() - startedAt;
              const [how = "", numbers = ""] = frame.payload.toString().split("\n");
              end = parseEnd(how);
              const [cpuNs, peak, oom, pidsMax, free] = numbers.split(" ").map(Number);
              figures = { cpuNs: cpuNs ?? 0, peakMemoryBytes: peak ?? 0, oomKills: oom ?? 0, pidsMaxHits: pidsMax ?? 0, workspaceFreeBytes: free ?? -1 };
              this.usageNow = { cpuMs: figures.cpuNs / 1e6, memoryBytes: this.usageNow.memoryBytes };
              statusSeen = true;
              finishIfComplete();
              break;
            }
            case "F":
              retrieved = Buffer.from(frame.payload);
              finishIfComplete();
              break;
            case "N":
              retrieved = null;
              finishIfComplete();
              break;
          }
        },
        () => resolve(),
      );
    });

    // The workspace: folders, the request's files, the compiled program.
    if (env.layout === "linked") for (const dir of LINKED_DIRS) this.container.send("D", `/work/.${dir}`);
    for (const file of spec.files) this.container.send("F", fileFrame(`/work/${file.name}`, 0o644, Buffer.from(file.content)));
    // The compiled program travels through the stream too: a prepared container cannot bind it later.
    if (spec.programFile) this.container.send("F", fileFrame(spec.program, 0o555, fs.readFileSync(spec.programFile)));
    this.container.send("X", execFrame(spec));
    startedAt = performance.now();
    this.running = true;
    if (spec.stdin !== undefined) this.container.send("I", spec.stdin);
    for (const data of this.pendingStdin) this.container.send("I", data);
    this.pendingStdin = [];
    if (spec.closeStdinAfterInput || this.stdinClosed) {
      this.stdinClosed = true;
      this.container.send("C");
    }
    const wallTimer = setTimeout(() => this.stop("wall"), spec.limits.wallSeconds * 1000);
    if (this.stopReason) {
      const reason = this.stopReason;
      this.stopReason = null;
      this.stop(reason);
    }
    await done;
    clearTimeout(wallTimer);
    // Without a status the stream ended: wait a moment for a kill from outside to finish.
    if (!statusSeen) await Promise.race([this.container.remove(), sleep(DRAIN_MS)]);
    if (this.killTimer) clearTimeout(this.killTimer);
    this.finished = true;
    if (!wallMs) wallMs = performance.now() - startedAt;

    const said = this.container.stderrText.trim().split("\n")[0];
    const result = describeEnd({
      end,
      figures,
      limits: spec.limits,
      stopReason: this.stopReason,
      wallMs,
      truncated: this.truncated,
      failureWithoutStatus: `the container ended without reporting${said ? `: ${said}` : ""}`,
    });
    if (spec.retrieve && result.exitCode === 0 && !result.failure && retrieved) {
      fs.writeFileSync(spec.retrieve.destination, retrieved, { mode: 0o555 });
      result.retrieved = true;
    }
    return result;
  }

  /** Forwards a stream up to the output limit; beyond it, stops the program. */
  private pump(which: "stdout" | "stderr", chunk: Buffer, deliver: (chunk: Buffer) => void): void {
    const room = this.spec.limits.outputBytes - this.seen[which];
    this.seen[which] += chunk.length;
    if (chunk.length <= room) {
      deliver(Buffer.from(chunk));
      return;
    }
    if (room > 0) deliver(Buffer.from(chunk.subarray(0, room)));
    if (!this.truncated[which]) {
      this.truncated[which] = true;
      this.stop("output");
    }
  }
}

/** container-init's status line; "killed" (it stopped the tree on request) is no end of the program's own. */
function parseEnd(text: string): ProgramEnd {
  let m = /^exit (\d+)$/.exec(text);
  if (m) return { kind: "exit", code: Number(m[1]) };
  m = /^signal (\d+)$/.exec(text);
  if (m) return { kind: "signal", signal: Number(m[1]) };
  m = /^error (.*)$/.exec(text);
  if (m) return { kind: "error", message: m[1]! };
  return null;
}


const RLIMIT = { cpu: 0, fsize: 1, core: 4, nofile: 7, as: 9, msgqueue: 12, rtprio: 14 };

/** The exec frame: NUL-terminated tagged strings (see container-init.ts). */
function execFrame(spec: SandboxSpec): Buffer {
  const { limits } = spec;
  const cpu = Math.ceil(limits.cpuSeconds);
  const fields = [
    `p${spec.program}`,
    `a${spec.argv0}`,
    ...spec.args.map((a) => `a${a}`),
    // PWD as a shell (and bwrap's --chdir) would set it.
    ...Object.entries({ PWD: spec.workdir ?? "/work", ...spec.env }).map(([k, v]) => `e${k}=${v}`),
    `c${spec.workdir ?? "/work"}`,
    `r${RLIMIT.cpu} ${cpu} ${cpu + 1}`, // SIGXCPU at the limit, SIGKILL a second later
    `r${RLIMIT.fsize} ${limits.fileSizeMiB * MiB} ${limits.fileSizeMiB * MiB}`,
    `r${RLIMIT.nofile} ${limits.openFiles} ${limits.openFiles}`,
    `r${RLIMIT.core} 0 0`,
    `r${RLIMIT.msgqueue} 0 0`,
    `r${RLIMIT.rtprio} 0 0`,
    ...(limits.addressSpaceMiB ? [`r${RLIMIT.as} ${limits.addressSpaceMiB * MiB} ${limits.addressSpaceMiB * MiB}`] : []),
    ...(spec.retrieve ? [`o/out/${spec.retrieve.name}`, `m${spec.retrieve.maxBytes}`] : []),
  ];
  return Buffer.from(fields.map((f) => `${f}\0`).join(""));
}

function fileFrame(name: string, mode: number, content: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const header = Buffer.alloc(6);
  header.writeUInt32BE(mode, 0);
  header.writeUInt16BE(nameBytes.length, 4);
  return Buffer.concat([header, nameBytes, content]);
}

/** Removes a container whatever its state; a container already gone (or going) counts as removed. */
async function removeContainer(container: Docker.Container): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return;
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 404) return;
      if (status !== 409) throw error;
      await sleep(100); // "removal already in progress" (AutoRemove): wait until it is gone
    }
  }
}

/** A ustar archive holding one file, for putArchive (small enough to write by hand). */
function tarOfOneFile(name: string, content: Buffer, mode: number): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, "ascii");
  const octal = (offset: number, length: number, value: number) => field(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, content.length);
  octal(136, 12, Math.floor(Date.now() / 1000));
  field(148, 8, "        ");
  field(156, 1, "0");
  field(257, 6, "ustar\0");
  field(263, 2, "00");
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** A process's start time (clock ticks since boot), or "" when it does not exist. */
function processStartTime(pid: number): string {
  if (!Number.isInteger(pid) || pid <= 0) return "";
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
