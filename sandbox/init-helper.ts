/**
 * sandbox-init: PID 1 of every sandbox (bwrap --as-pid-1).
 *
 * bwrap's own PID 1 reports a program killed by signal N as exit code 128+N, so a program that
 * calls exit(137) would look killed. This helper reports exactly how the program ended on fd 4
 * ("exit N" or "signal N"), reaps orphans meanwhile, and exits as soon as the program does. When
 * PID 1 exits the kernel kills everything else in the pid namespace: a daemonised child cannot
 * outlive main() (and the engine kills the cgroup as well).
 *
 * As PID 1 it cannot be signalled from inside the sandbox, so kill(getppid(), SIGKILL) and
 * kill(-1, SIGKILL) do no harm. It is not dumpable, so the program cannot reach its fd 4 through
 * /proc/1/fd. It is our own code, compiled once on the host with the host's gcc.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

/** The fd sandbox-init writes the program's status to. */
export const STATUS_FD = 4;

export const INIT_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD ${STATUS_FD}

int main(int argc, char **argv) {
  if (argc < 3) {
    dprintf(2, "usage: sandbox-init PROGRAM ARGV0 [ARGS...]\n");
    return 127;
  }
  prctl(PR_SET_DUMPABLE, 0);
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC); /* the program never inherits it */
  pid_t child = fork();
  if (child < 0) {
    dprintf(STATUS_FD, "error fork: %s\n", strerror(errno));
    return 127;
  }
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[1], argv + 2);
    dprintf(STATUS_FD, "error cannot start %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  for (;;) {
    int status;
    pid_t pid = wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return 127;
    }
    if (pid != child) continue; /* an orphan reaped */
    if (WIFEXITED(status)) dprintf(STATUS_FD, "exit %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) dprintf(STATUS_FD, "signal %d\n", WTERMSIG(status));
    _exit(0);
  }
}
`;

const run = promisify(execFile);

/**
 * Builds sandbox-init into `dir` (once per source version) and returns its path. The binary is
 * world-readable and executable so the sandbox user can bind and run it.
 */
export async function buildInitHelper(dir: string): Promise<string> {
  const hash = createHash("sha256").update(INIT_SOURCE).digest("hex").slice(0, 16);
  const binary = path.join(dir, `sandbox-init-${hash}`);
  if (fs.existsSync(binary)) return binary;
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  const source = path.join(dir, `sandbox-init-${hash}-${process.pid}.c`);
  const temp = `${binary}.${process.pid}.tmp`;
  await fsp.writeFile(source, INIT_SOURCE);
  try {
    await run("/usr/bin/gcc", ["-O2", "-Wall", "-o", temp, source], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
    await fsp.chmod(temp, 0o555);
    await fsp.rename(temp, binary);
  } finally {
    await fsp.rm(source, { force: true });
    await fsp.rm(temp, { force: true });
  }
  return binary;
}

export type ProgramStatus = { kind: "exit"; code: number } | { kind: "signal"; signal: number } | { kind: "error"; message: string };

export function parseStatus(text: string): ProgramStatus | null {
  const line = text.split("\n")[0] ?? "";
  let m = /^exit (\d+)$/.exec(line);
  if (m) return { kind: "exit", code: Number(m[1]) };
  m = /^signal (\d+)$/.exec(line);
  if (m) return { kind: "signal", signal: Number(m[1]) };
  m = /^error (.*)$/.exec(line);
  if (m) return { kind: "error", message: m[1]! };
  return null;
}
