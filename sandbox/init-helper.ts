/**
 * sandbox-init: PID 1 of every sandbox (bwrap --as-pid-1).
 *
 * It starts before the program is known, so a sandbox can be prepared ahead of use: it says
 * "ready" on fd 4, then reads its command from fd 5 until end-of-file (an empty command means
 * "not needed": it exits and the sandbox goes away). The command (encodeCommand) gives the
 * rlimits, the working directory, the program, its argv and its whole environment; a forked child
 * sets the rlimits (soft and hard, so the program cannot raise them), changes directory and
 * execs the program.
 *
 * bwrap's own PID 1 reports a program killed by signal N as exit code 128+N, so a program that
 * calls exit(137) would look killed. This helper reports exactly how the program ended on fd 4
 * ("exit N" or "signal N"), reaps orphans meanwhile, and exits as soon as the program does. When
 * PID 1 exits the kernel kills everything else in the pid namespace: a daemonised child cannot
 * outlive main() (and the engine kills the cgroup as well).
 *
 * As PID 1 it cannot be signalled from inside the sandbox, so kill(getppid(), SIGKILL) and
 * kill(-1, SIGKILL) do no harm. It is not dumpable, so the program cannot reach its fds 4 and 5
 * through /proc/1/fd. It is our own code, compiled once on the host with the host's gcc.
 */
import { buildHelperBinary } from "./helper-binary";

/** The fd sandbox-init writes "ready" and then the program's status to. */
export const STATUS_FD = 4;
/** The fd sandbox-init reads its command from. */
export const COMMAND_FD = 5;
const COMMAND_MAGIC = "osbx-init-1";
const MAX_COMMAND_BYTES = 4 * 1024 * 1024;

export const INIT_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD ${STATUS_FD}
#define COMMAND_FD ${COMMAND_FD}
#define MAX_COMMAND ${MAX_COMMAND_BYTES}

static char *buf;
static size_t len, at;

/* The next NUL-terminated field of the command, or NULL past its end. */
static char *field(void) {
  if (at >= len) return NULL;
  char *f = buf + at;
  char *end = memchr(f, 0, len - at);
  if (!end) return NULL;
  at = (size_t)(end - buf) + 1;
  return f;
}

static int number(unsigned long long *out) {
  char *f = field(), *end;
  if (!f) return -1;
  *out = strtoull(f, &end, 10);
  return *end ? -1 : 0;
}

static void limit(int resource, rlim_t value) {
  struct rlimit r = { value, value };
  if (setrlimit(resource, &r) != 0) {
    dprintf(STATUS_FD, "error cannot set a resource limit: %s\n", strerror(errno));
    _exit(127);
  }
}

int main(void) {
  prctl(PR_SET_DUMPABLE, 0);
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC); /* the program never inherits them */
  fcntl(COMMAND_FD, F_SETFD, FD_CLOEXEC);
  dprintf(STATUS_FD, "ready\n");
  buf = malloc(MAX_COMMAND);
  if (!buf) return 127;
  for (;;) {
    if (len == MAX_COMMAND) return 127;
    ssize_t n = read(COMMAND_FD, buf + len, MAX_COMMAND - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(COMMAND_FD);
  if (len == 0) return 0; /* prepared, then not needed */

  unsigned long long cpu_soft, cpu_hard, fsize, nofile, as, nargs, nenv;
  char *magic = field();
  if (!magic || strcmp(magic, "${COMMAND_MAGIC}") != 0 || number(&cpu_soft) || number(&cpu_hard) || number(&fsize) ||
      number(&nofile) || number(&as)) {
    dprintf(STATUS_FD, "error malformed command\n");
    return 127;
  }
  char *workdir = field(), *program = field();
  if (!workdir || !program || number(&nargs) || nargs < 1 || nargs > 65536) {
    dprintf(STATUS_FD, "error malformed command\n");
    return 127;
  }
  char **args = calloc(nargs + 1, sizeof(char *));
  for (unsigned long long i = 0; i < nargs; i++)
    if (!(args[i] = field())) { dprintf(STATUS_FD, "error malformed command\n"); return 127; }
  if (number(&nenv) || nenv > 65536) { dprintf(STATUS_FD, "error malformed command\n"); return 127; }
  char **env = calloc(nenv + 1, sizeof(char *));
  for (unsigned long long i = 0; i < nenv; i++)
    if (!(env[i] = field())) { dprintf(STATUS_FD, "error malformed command\n"); return 127; }

  pid_t child = fork();
  if (child < 0) {
    dprintf(STATUS_FD, "error fork: %s\n", strerror(errno));
    return 127;
  }
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct rlimit cpu = { cpu_soft, cpu_hard }; /* SIGXCPU at the soft limit, SIGKILL at the hard one */
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) { dprintf(STATUS_FD, "error cannot set the CPU limit\n"); _exit(127); }
    limit(RLIMIT_FSIZE, fsize);
    limit(RLIMIT_NOFILE, nofile);
    if (as) limit(RLIMIT_AS, as);
    limit(RLIMIT_CORE, 0);
    limit(RLIMIT_MSGQUEUE, 0);
    limit(RLIMIT_RTPRIO, 0);
    if (chdir(workdir) != 0) {
      dprintf(STATUS_FD, "error cannot enter %s: %s\n", workdir, strerror(errno));
      _exit(127);
    }
    execve(program, args, env);
    dprintf(STATUS_FD, "error cannot start %s: %s\n", args[0], strerror(errno));
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

export interface InitCommand {
  rlimits: { cpuSoft: number; cpuHard: number; fileSizeBytes: number; openFiles: number; addressSpaceBytes?: number };
  workdir: string;
  program: string;
  /** argv[0], then the arguments. */
  argv: string[];
  env: Record<string, string>;
}

/** The bytes sandbox-init reads on COMMAND_FD. */
export function encodeCommand(command: InitCommand): Buffer {
  const { rlimits, argv } = command;
  const env = Object.entries(command.env).map(([k, v]) => `${k}=${v}`);
  const fields = [
    COMMAND_MAGIC,
    rlimits.cpuSoft,
    rlimits.cpuHard,
    rlimits.fileSizeBytes,
    rlimits.openFiles,
    rlimits.addressSpaceBytes ?? 0,
    command.workdir,
    command.program,
    argv.length,
    ...argv,
    env.length,
    ...env,
  ].map(String);
  for (const f of fields) if (f.includes("\0")) throw new Error("a command field contains a NUL byte");
  return Buffer.from(`${fields.join("\0")}\0`);
}

/**
 * Builds sandbox-init into `dir` (once per source version) and returns its path. The binary is
 * world-readable and executable so the sandbox user can bind and run it.
 */
export function buildInitHelper(dir: string): Promise<string> {
  return buildHelperBinary(dir, "sandbox-init", INIT_SOURCE, 0o555);
}

export type ProgramStatus = { kind: "exit"; code: number } | { kind: "signal"; signal: number } | { kind: "error"; message: string };

/** How the program ended, from what sandbox-init wrote after "ready"; null when it said nothing. */
export function parseStatus(text: string): ProgramStatus | null {
  const line = text.split("\n").find((l) => l !== "" && l !== "ready") ?? "";
  let m = /^exit (\d+)$/.exec(line);
  if (m) return { kind: "exit", code: Number(m[1]) };
  m = /^signal (\d+)$/.exec(line);
  if (m) return { kind: "signal", signal: Number(m[1]) };
  m = /^error (.*)$/.exec(line);
  if (m) return { kind: "error", message: m[1]! };
  return null;
}
