/**
 * Workspace mounts and cgroup folders without a process or a thread-pool round trip each:
 * `sandbox-mount`, a small root helper the bwrap driver keeps running, mounts and unmounts the
 * workspaces' tmpfs and makes, sets and removes the sandboxes' cgroups on request.
 *
 * Why: each sandbox needs one tmpfs mounted ahead of use and unmounted after it. With
 * `/usr/bin/mount` and `/usr/bin/umount` that is two more processes per sandbox, each forked
 * from the server (whose event loop waits in fork until the child has exec'd) and each loading
 * libmount: in a lecture hall (hundreds of runs on two cores) the largest single part of the
 * server's own CPU per run. Its five cgroups (a mkdir and a few file writes each, a rmdir at the
 * end) were some twenty awaited file operations through the thread pool. The helper makes each
 * one a line on a pipe and one system call; a sandbox's lines go in one write.
 *
 * Protocol (stdin → stdout, one line each, answered in order):
 *   <id> TAB mount TAB <dir> TAB <bytes>   tmpfs at <dir>, size=<bytes>, mode 0755, nosuid, nodev
 *   <id> TAB umount TAB <dir>              umount2(dir, 0)
 *   <id> TAB detach TAB <dir>              umount2(dir, MNT_DETACH)
 *   <id> TAB mkdir TAB <dir>               mkdir(dir, 0755); an existing folder is fine
 *   <id> TAB write TAB <file> TAB <value>  the value into an existing file (a cgroup setting)
 *   <id> TAB rmdir TAB <dir>               rmdir(dir); a missing folder is fine
 *   → <id> TAB ok   |   <id> TAB err TAB <errno name> TAB <message>
 * Mounts only under the root given as its first argument (the driver's temp root); cgroup
 * operations only under /sys/fs/cgroup/<controller>/<its second argument>/. No path may hold
 * "/..". It exits when its stdin closes (the server ended) and with its parent (PDEATHSIG).
 * Built once per source version with the host's gcc, as sandbox-init is.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fsp from "node:fs/promises";
import readline from "node:readline";
import { promisify } from "node:util";
import { buildHelperBinary } from "./helper-binary";

export const MOUNT_HELPER_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *root, *cgroup_parent;
static size_t root_len;

static int under_root(const char *dir) {
  return dir[0] == '/' && !strstr(dir, "/..") && strncmp(dir, root, root_len) == 0 && dir[root_len] == '/';
}

/* /sys/fs/cgroup/<controller>/<parent>/<something> */
static int in_cgroups(const char *path) {
  static const char prefix[] = "/sys/fs/cgroup/";
  if (strncmp(path, prefix, sizeof prefix - 1) != 0 || strstr(path, "/..")) return 0;
  const char *controller = path + sizeof prefix - 1, *slash = strchr(controller, '/');
  if (!slash || slash == controller) return 0;
  size_t n = strlen(cgroup_parent);
  return strncmp(slash + 1, cgroup_parent, n) == 0 && slash[1 + n] == '/' && slash[2 + n] != 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || argv[1][0] != '/' || !argv[2][0] || strchr(argv[2], '/')) return 2;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0; /* the server is already gone */
  root = argv[1];
  cgroup_parent = argv[2];
  root_len = strlen(root);
  while (root_len > 1 && root[root_len - 1] == '/') root_len--;
  setvbuf(stdout, NULL, _IOLBF, 0);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[n - 1] = 0;
    char *id = strtok(line, "\t"), *op = strtok(NULL, "\t"), *path = strtok(NULL, "\t"), *arg = strtok(NULL, "\t");
    if (!id) continue;
    int is_mount = op && (!strcmp(op, "mount") || !strcmp(op, "umount") || !strcmp(op, "detach"));
    if (!op || !path || !(is_mount ? under_root(path) : in_cgroups(path))) {
      printf("%s\terr\tEINVAL\tmalformed request or a path outside the allowed folders\n", id);
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
      rc = mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, data);
    } else if (strcmp(op, "umount") == 0) {
      rc = umount2(path, 0);
    } else if (strcmp(op, "detach") == 0) {
      rc = umount2(path, MNT_DETACH);
    } else if (strcmp(op, "mkdir") == 0) {
      rc = mkdir(path, 0755);
      if (rc != 0 && errno == EEXIST) rc = 0;
    } else if (strcmp(op, "rmdir") == 0) {
      rc = rmdir(path);
      if (rc != 0 && errno == ENOENT) rc = 0;
    } else if (strcmp(op, "write") == 0 && arg) {
      int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      rc = fd < 0 ? -1 : 0;
      if (fd >= 0) {
        size_t len = strlen(arg);
        if (write(fd, arg, len) != (ssize_t)len) rc = -1;
        int e = errno;
        close(fd);
        errno = e;
      }
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

/** Makes, sets and removes a sandbox's cgroup folders (see CgroupSet). */
export interface CgroupFiles {
  /** Runs each step in order (all sent at once); resolves with each step's error, or null. */
  run(steps: CgroupStep[]): Promise<Array<Error | null>>;
}
export type CgroupStep = { op: "mkdir"; path: string } | { op: "rmdir"; path: string } | { op: "write"; path: string; value: string };

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
export function buildMountHelper(dir: string): Promise<string> {
  return buildHelperBinary(dir, "sandbox-mount", MOUNT_HELPER_SOURCE, 0o500);
}

/** The same steps with the server's own file calls (no helper): for tools and as the fallback. */
export const fileSystemCgroups: CgroupFiles = {
  async run(steps) {
    const errors: Array<Error | null> = [];
    for (const step of steps) {
      try {
        if (step.op === "mkdir") await fsp.mkdir(step.path, { recursive: true });
        else if (step.op === "rmdir") {
          await fsp.rmdir(step.path).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== "ENOENT") throw e;
          });
        } else if (step.op === "write") await fsp.writeFile(step.path, step.value);
        errors.push(null);
      } catch (error) {
        errors.push(error as Error);
      }
    }
    return errors;
  },
};

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
export class HelperMounter implements Mounter, CgroupFiles {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, { resolve(): void; reject(error: Error): void }>();
  private counter = 0;
  private broken = false;
  private closed = false;

  constructor(
    private readonly binary: string,
    /** Only directories under this one are mounted. */
    private readonly root: string,
    /** Only cgroups under /sys/fs/cgroup/<controller>/<this>/ are made, set and removed. */
    private readonly cgroupParent: string,
  ) {}

  mount(dir: string, sizeBytes: number): Promise<void> {
    return this.request(["mount", dir, String(sizeBytes)], () => processMounter.mount(dir, sizeBytes));
  }

  unmount(dir: string, detach: boolean): Promise<void> {
    return this.request([detach ? "detach" : "umount", dir], () => processMounter.unmount(dir, detach));
  }

  async run(steps: CgroupStep[]): Promise<Array<Error | null>> {
    const lines = steps.map((s) => (s.op === "write" ? [s.op, s.path, s.value] : [s.op, s.path]));
    if (this.broken || this.closed || lines.some((fields) => fields.some((f) => /[\t\n]/.test(f)))) return fileSystemCgroups.run(steps);
    const child = this.child ?? this.startHelper();
    if (!child) return fileSystemCgroups.run(steps);
    const requests = lines.map((fields) => {
      const id = ++this.counter;
      const done = new Promise<void>((resolve, reject) => {
        if (this.pending.size === 0) this.hold(child, true);
        this.pending.set(id, { resolve, reject });
      });
      return { id, fields, done };
    });
    child.stdin!.write(requests.map((r) => `${[r.id, ...r.fields].join("\t")}\n`).join(""));
    const settled = await Promise.allSettled(requests.map((r) => r.done));
    return settled.map((r) => (r.status === "rejected" ? (r.reason as Error) : null));
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
      child = spawn(this.binary, [this.root, this.cgroupParent], { env: {} as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "ignore"] });
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
