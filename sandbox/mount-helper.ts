/**
 * Workspace mounts without a process per mount: `sandbox-mount`, a small root helper the bwrap
 * driver keeps running, mounts and unmounts the workspaces' tmpfs on request.
 *
 * Why: each sandbox needs one tmpfs mounted ahead of use and unmounted after it. With
 * `/usr/bin/mount` and `/usr/bin/umount` that is two more processes per sandbox, each forked
 * from the server (whose event loop waits in fork until the child has exec'd) and each loading
 * libmount: in a lecture hall (hundreds of runs on two cores) the largest single part of the
 * server's own CPU per run. The helper makes each one a line on a pipe and one system call.
 *
 * Protocol (stdin → stdout, one line each, answered in order):
 *   <id> TAB mount TAB <dir> TAB <bytes>   tmpfs at <dir>, size=<bytes>, mode 0755, nosuid, nodev
 *   <id> TAB umount TAB <dir>              umount2(dir, 0)
 *   <id> TAB detach TAB <dir>              umount2(dir, MNT_DETACH)
 *   → <id> TAB ok   |   <id> TAB err TAB <errno name> TAB <message>
 * Only absolute directories under the root given as its argument (the driver's temp root) are
 * accepted. It exits when its stdin closes (the server ended) and with its parent (PDEATHSIG).
 * Built once per source version with the host's gcc, as sandbox-init is.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";

export const MOUNT_HELPER_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char *root;
static size_t root_len;

static int allowed(const char *dir) {
  if (dir[0] != '/' || strstr(dir, "/..") || strncmp(dir, root, root_len) != 0 || dir[root_len] != '/') return 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] != '/') return 2;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0; /* the server is already gone */
  root = argv[1];
  root_len = strlen(root);
  while (root_len > 1 && root[root_len - 1] == '/') root_len--;
  setvbuf(stdout, NULL, _IOLBF, 0);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[n - 1] = 0;
    char *id = strtok(line, "\t"), *op = strtok(NULL, "\t"), *dir = strtok(NULL, "\t"), *arg = strtok(NULL, "\t");
    if (!id) continue;
    if (!op || !dir || !allowed(dir)) {
      printf("%s\terr\tEINVAL\tmalformed request or a directory outside %s\n", id, root);
      continue;
    }
    int rc;
    if (strcmp(op, "mount") == 0 && arg) {
      char *end;
      unsigned long long bytes = strtoull(arg, &end, 10);
      if (*end || bytes == 0) {
        printf("%s\terr\tEINVAL\tbad size\n", id);
        continue;
      }
      char data[64];
      snprintf(data, sizeof data, "size=%llu,mode=0755", bytes);
      rc = mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, data);
    } else if (strcmp(op, "umount") == 0) {
      rc = umount2(dir, 0);
    } else if (strcmp(op, "detach") == 0) {
      rc = umount2(dir, MNT_DETACH);
    } else {
      printf("%s\terr\tEINVAL\tunknown operation\n", id);
      continue;
    }
    if (rc == 0) printf("%s\tok\n", id);
    else {
      int e = errno;
      printf("%s\terr\t%s\t%s\n", id, strerrorname_np(e) ? strerrorname_np(e) : "E?", strerror(e));
    }
  }
  return 0;
}
`;

const exec = promisify(execFile);

/** Mounts and unmounts a workspace's tmpfs. */
export interface Mounter {
  mount(dir: string, sizeBytes: number): Promise<void>;
  /** Rejects with an error whose `code` is e.g. "EBUSY" when the mount is in use. */
  unmount(dir: string, detach: boolean): Promise<void>;
}

/** One `mount`/`umount` process per call: for tools and as the fallback. */
export const processMounter: Mounter = {
  async mount(dir, sizeBytes) {
    await exec("/usr/bin/mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755,nosuid,nodev`, "tmpfs", dir]);
  },
  async unmount(dir, detach) {
    await exec("/usr/bin/umount", detach ? ["-l", dir] : [dir]);
  },
};

/** Builds sandbox-mount into `dir` (once per source version) and returns its path. */
export async function buildMountHelper(dir: string): Promise<string> {
  const hash = createHash("sha256").update(MOUNT_HELPER_SOURCE).digest("hex").slice(0, 16);
  const binary = path.join(dir, `sandbox-mount-${hash}`);
  if (fs.existsSync(binary)) return binary;
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  const unique = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const source = path.join(dir, `sandbox-mount-${hash}-${unique}.c`);
  const temp = `${binary}.${unique}.tmp`;
  await fsp.writeFile(source, MOUNT_HELPER_SOURCE);
  try {
    await exec("/usr/bin/gcc", ["-O2", "-Wall", "-o", temp, source], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
    await fsp.chmod(temp, 0o500);
    await fsp.rename(temp, binary);
  } finally {
    await fsp.rm(source, { force: true });
    await fsp.rm(temp, { force: true });
  }
  return binary;
}

class MountError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Talks to one sandbox-mount process, started on first use and again after it died. Requests it
 * cannot take (a path with a tab or a newline) and requests after it failed to start go to
 * `processMounter`. The helper keeps the event loop alive only while a request is pending.
 */
export class HelperMounter implements Mounter {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, { resolve(): void; reject(error: Error): void }>();
  private counter = 0;
  private broken = false;
  private closed = false;

  constructor(
    private readonly binary: string,
    /** Only directories under this one are accepted. */
    private readonly root: string,
  ) {}

  mount(dir: string, sizeBytes: number): Promise<void> {
    return this.request(["mount", dir, String(sizeBytes)], () => processMounter.mount(dir, sizeBytes));
  }

  unmount(dir: string, detach: boolean): Promise<void> {
    return this.request([detach ? "detach" : "umount", dir], () => processMounter.unmount(dir, detach));
  }

  /** Ends the helper (it exits when its input closes). */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
    this.child = null;
  }

  private request(fields: string[], fallback: () => Promise<void>): Promise<void> {
    if (this.broken || this.closed || fields.some((f) => /[\t\n]/.test(f))) return fallback();
    const child = this.child ?? this.startHelper();
    if (!child) return fallback();
    const id = ++this.counter;
    return new Promise<void>((resolve, reject) => {
      if (this.pending.size === 0) this.hold(child, true);
      this.pending.set(id, { resolve, reject });
      child.stdin!.write(`${[id, ...fields].join("\t")}\n`);
    });
  }

  private startHelper(): ChildProcess | null {
    let child: ChildProcess;
    try {
      child = spawn(this.binary, [this.root], { env: {} as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "ignore"] });
    } catch {
      this.broken = true;
      return null;
    }
    this.child = child;
    child.stdin!.on("error", () => undefined);
    child.once("error", () => {
      // Could not be started at all: every later request uses the mount and umount programs.
      this.broken = true;
      this.failAll(child, "the mount helper could not be started");
    });
    child.once("exit", () => this.failAll(child, "the mount helper ended"));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      const [id, status, code = "E?", message = ""] = line.split("\t");
      const waiter = this.pending.get(Number(id));
      if (!waiter) return;
      this.pending.delete(Number(id));
      if (this.pending.size === 0) this.hold(child, false);
      if (status === "ok") waiter.resolve();
      else waiter.reject(new MountError(code, `${code}: ${message}`));
    });
    this.hold(child, false);
    return child;
  }

  /** Pending requests keep the process alive; an idle helper does not. */
  private hold(child: ChildProcess, ref: boolean): void {
    type Handle = { ref?(): void; unref?(): void } | null;
    const pipes = [child.stdin, child.stdout] as unknown as Handle[];
    if (ref) {
      child.ref();
      for (const p of pipes) p?.ref?.();
    } else {
      child.unref();
      for (const p of pipes) p?.unref?.();
    }
  }

  private failAll(child: ChildProcess, why: string): void {
    if (this.child === child) this.child = null;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const w of waiting) w.reject(new MountError("EIO", why));
  }
}
