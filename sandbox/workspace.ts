/**
 * A sandbox's workspace on the host: a directory with a size-limited tmpfs mounted on it, holding
 *   work/  the request's files; the sandbox's /work and working directory
 *   tmp/   the sandbox's /tmp (the compilers' temporary files)
 *   out/   the sandbox's /out, where a compile leaves the binary
 * One tmpfs for all three, so `workspaceMiB` caps what a program can write anywhere; a full
 * workspace is ENOSPC for the program, never a full host disk. Its pages are charged to the memory
 * cgroup of the sandbox that writes them.
 *
 * The tmpfs root stays root-owned (0755) so the sandbox cannot swap a subfolder for a symlink; the
 * subfolders belong to the sandbox user.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { processMounter, type Mounter } from "./mount-helper";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WorkspaceFile {
  /** Relative to work/, validated by the protocol's FileNameSchema; checked again here. */
  name: string;
  content: string | Buffer;
}

export class Workspace {
  readonly root: string;
  private mounted = false;

  constructor(
    /** A fresh directory made for this sandbox only; removed by dispose(). */
    readonly dir: string,
    /** Who mounts the tmpfs (the bwrap driver's helper; default the mount and umount programs). */
    private readonly mounter: Mounter = processMounter,
  ) {
    this.root = path.join(dir, "fs");
  }

  get work(): string {
    return path.join(this.root, "work");
  }
  get tmp(): string {
    return path.join(this.root, "tmp");
  }
  get out(): string {
    return path.join(this.root, "out");
  }

  async create(sizeBytes: number, uid: number, gid: number, files: WorkspaceFile[]): Promise<void> {
    // Synchronous folder steps: microseconds each, fewer round trips through the thread pool.
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
    fs.chmodSync(this.dir, 0o711); // the sandbox user must traverse it to bind the folders
    try {
      await this.mounter.mount(this.root, sizeBytes);
    } catch (error) {
      // A helper that died may have mounted it before answering: dispose() must know.
      this.mounted = isMountPoint(this.root);
      throw error;
    }
    this.mounted = true;
    for (const sub of [this.work, this.tmp, this.out]) {
      fs.mkdirSync(sub, { mode: 0o755 });
      fs.chownSync(sub, uid, gid);
    }
    this.writeFiles(files, uid, gid);
  }

  /**
   * Writes the request's files into work/, owned by the sandbox user. Also after the sandbox
   * started: work/ is bound into it, so they appear there. Synchronous: it is on the path of every
   * run, and a few small files on a tmpfs take microseconds, less than handing each step
   * (mkdir, open, write, close, chown) to the thread pool and back (sources are at most 256 KiB).
   */
  writeFiles(files: WorkspaceFile[], uid: number, gid: number): void {
    for (const file of files) {
      const target = path.resolve(this.work, file.name);
      if (!target.startsWith(this.work + path.sep)) throw new Error(`file name escapes the workspace: ${file.name}`);
      // Subfolders (Rust modules) first, owned by the sandbox user so it can write beside them.
      const parts = path.relative(this.work, path.dirname(target)).split(path.sep).filter(Boolean);
      let dir = this.work;
      for (const part of parts) {
        dir = path.join(dir, part);
        if (!fs.existsSync(dir)) {
          fs.mkdirSync(dir, { mode: 0o755 });
          fs.chownSync(dir, uid, gid);
        }
      }
      // wx: never follow or overwrite anything already there
      const fd = fs.openSync(target, "wx", 0o644);
      try {
        fs.writeFileSync(fd, file.content);
        fs.fchownSync(fd, uid, gid);
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  /** Space left on the tmpfs; used to tell a full workspace from other write errors. */
  freeBytes(): number {
    try {
      const s = fs.statfsSync(this.root);
      return s.bavail * s.bsize;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  /**
   * Copies a file the sandbox produced to the host. The sandbox user controls out/, so refuse
   * anything but a regular file (O_NOFOLLOW: a symlink to /etc/shadow must not be followed as root).
   * Synchronous: it is on the path of every compile, and a compiled program (a few KiB to a few
   * MiB, on tmpfs) is read and written in well under a millisecond, less than the thread pool's
   * round trips would add.
   */
  retrieveSync(relativeToRoot: string, destination: string, maxBytes: number): boolean {
    const source = path.join(this.root, relativeToRoot);
    let fd: number | undefined;
    try {
      // O_NONBLOCK: a FIFO left there must not hang the server in open().
      fd = fs.openSync(source, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      const stat = fs.fstatSync(fd);
      if (!stat.isFile() || stat.size > maxBytes) return false;
      const data = fs.readFileSync(fd);
      if (data.length > maxBytes) return false;
      fs.writeFileSync(destination, data, { mode: 0o555 });
      return true;
    } catch {
      return false;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** Marks the workspace as possibly mounted: for removing one a crashed server left behind. */
  assumeMounted(): this {
    this.mounted = fs.existsSync(this.root) && isMountPoint(this.root);
    return this;
  }

  /** Unmounts and removes everything; safe to call twice and after a failed create(). */
  async dispose(): Promise<void> {
    if (this.mounted) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.mounter.unmount(this.root, false);
          this.mounted = false;
          break;
        } catch (_error) {
          // Busy only while a dying sandbox process still holds it: retry briefly, then detach.
          if (attempt >= 20) {
            await this.mounter.unmount(this.root, true).catch(() => undefined);
            this.mounted = false;
            break;
          }
          await sleep(25);
        }
      }
    }
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === target);
}
