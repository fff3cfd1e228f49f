/**
 * container-init: PID 1 of every container the docker driver starts (the container's counterpart
 * of sandbox-init). It waits, already started, until the engine gives it work over the container's
 * stdin, so that a run does not pay for creating and starting a container.
 *
 * Everything goes through the one attached stream, as frames `[type: u8][length: u32 BE][payload]`,
 * so it works the same against a local and a remote Docker Engine (no host paths):
 *
 *   engine → init   D dir      mkdir (the workspace's folders on the container's tmpfs)
 *                   F file     u32 mode, u16 name length, name, content (e.g. /work/main.c, /program/main)
 *                   X exec     NUL-terminated tagged strings: p program, a argv (argv0 first), e env,
 *                              c cwd, r "resource soft hard" (setrlimit), o file to send back, m its max bytes
 *                   I stdin    data for the program's stdin      C  close the program's stdin
 *                   K kill     stop every process of the sandbox now and report
 *                   H          a heartbeat every few seconds: 20 s without any frame, the engine is gone
 *   init → engine   R ready    waiting for work                  O/E  the program's stdout/stderr
 *                   U usage    "cpuNs memoryBytes" of the container's cgroup, every 100 ms while it runs
 *                   S status   "exit N" | "signal N" | "error TEXT" | "killed", then
 *                              "\n cpuNs peakBytes oomKills pidsMaxHits workspaceFreeBytes"
 *                   F file     the `o` file's content (only a regular file up to `m` bytes), or N: none
 *
 * The container's cgroup (its memory, pids and CPU-time figures) is read from inside, at
 * /sys/fs/cgroup/<controller>/, which Docker mounts read-only with the container's own values: the
 * figures and the CPU-time limit of the whole tree hold on a remote Engine as well.
 *
 * (Docker does not always close a container's stdin when its attached client dies, hence the heartbeat.)
 * When the program exits, init kills whatever it left (kill(-1): every process of the sandbox
 * user in the container), reports and exits; the container then stops and Docker removes it. As
 * PID 1 of its pid namespace it cannot be killed from inside; it is not dumpable, so the program
 * (same uid) cannot reach its descriptors through /proc/1/fd. If the engine goes away (the
 * attached stream closes: stdin EOF) it kills everything and exits too, so a crashed server leaves
 * no running container behind. It is statically linked: it runs in any course image.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

export const CONTAINER_INIT_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (96u << 20)
#define MAX_PENDING_STDIN (1u << 20)
/* The engine sends a heartbeat (H) every few seconds; this long without any frame, it is gone. */
#define ENGINE_SILENCE_MS 20000

static void write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { struct pollfd q = { fd, POLLOUT, 0 }; poll(&q, 1, 100); continue; }
      _exit(3); /* the engine is gone */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void frame(char type, const void *data, uint32_t n) {
  unsigned char h[5] = { (unsigned char)type, n >> 24, n >> 16, n >> 8, n };
  write_all(1, h, 5);
  if (n) write_all(1, data, n);
}

/* Frames from the engine: read into a growing buffer, taken whole. */
static unsigned char *in_buf;
static size_t in_len, in_cap;
static int in_eof;

static int fill_input(void) {
  if (in_cap - in_len < 65536) {
    in_cap = in_cap ? in_cap * 2 : 262144;
    in_buf = realloc(in_buf, in_cap);
    if (!in_buf) _exit(4);
  }
  ssize_t r = read(0, in_buf + in_len, in_cap - in_len);
  if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
  if (r == 0) { in_eof = 1; return -1; }
  in_len += (size_t)r;
  return 0;
}

/* A whole frame at the start of the buffer? Returns its total length or 0. */
static size_t frame_ready(void) {
  if (in_len < 5) return 0;
  uint32_t n = ((uint32_t)in_buf[1] << 24) | ((uint32_t)in_buf[2] << 16) | ((uint32_t)in_buf[3] << 8) | in_buf[4];
  if (n > MAX_FRAME) _exit(5);
  return in_len >= 5 + (size_t)n ? 5 + (size_t)n : 0;
}

static void consume(size_t n) {
  memmove(in_buf, in_buf + n, in_len - n);
  in_len -= n;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static long long read_number(const char *file, const char *key) {
  char buf[4096];
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  if (!key) return atoll(buf);
  size_t k = strlen(key);
  for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, key, k) == 0 && line[k] == ' ') return atoll(line + k + 1);
  }
  return 0;
}

#define CG "/sys/fs/cgroup/"
static long long cpu_ns(void) { return read_number(CG "cpuacct/cpuacct.usage", NULL); }
static long long memory_bytes(void) { return read_number(CG "memory/memory.usage_in_bytes", NULL); }

static void usage_frame(void) {
  char text[64];
  int n = snprintf(text, sizeof text, "%lld %lld", cpu_ns(), memory_bytes());
  frame('U', text, (uint32_t)n);
}

static void write_file(const unsigned char *p, uint32_t n) {
  if (n < 6) _exit(6);
  mode_t mode = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
  uint16_t len = (uint16_t)((p[4] << 8) | p[5]);
  if (6u + len > n || len == 0 || len > 4095) _exit(6);
  char name[4096];
  memcpy(name, p + 6, len);
  name[len] = 0;
  /* Parent folders first (Rust modules in subfolders). */
  for (char *s = strchr(name + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = 0;
    mkdir(name, 0755);
    *s = '/';
  }
  int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
  if (fd < 0) { dprintf(2, "container-init: cannot write %s: %s\n", name, strerror(errno)); _exit(6); }
  write_all(fd, p + 6 + len, n - 6 - len);
  fchmod(fd, mode & 0777);
  close(fd);
}

/* The exec frame's fields. */
static char *program, *cwd = "/", *retrieve_path;
static char *argv_list[4096], *env_list[4096];
static int argc_n, envc_n;
static long long retrieve_max;
static struct { int resource; rlim_t soft, hard; } limits[32];
static int limit_n;

static void parse_exec(unsigned char *p, uint32_t n) {
  char *s = (char *)p, *end = (char *)p + n;
  while (s < end) {
    size_t len = strnlen(s, (size_t)(end - s));
    if (s + len >= end) break; /* not NUL-terminated */
    char tag = s[0], *value = s + 1;
    if (tag == 'p') program = value;
    else if (tag == 'a' && argc_n < 4095) argv_list[argc_n++] = value;
    else if (tag == 'e' && envc_n < 4095) env_list[envc_n++] = value;
    else if (tag == 'c') cwd = value;
    else if (tag == 'o') retrieve_path = value;
    else if (tag == 'm') retrieve_max = atoll(value);
    else if (tag == 'r' && limit_n < 32) {
      long long soft, hard;
      int resource;
      if (sscanf(value, "%d %lld %lld", &resource, &soft, &hard) == 3) {
        limits[limit_n].resource = resource;
        limits[limit_n].soft = soft < 0 ? RLIM_INFINITY : (rlim_t)soft;
        limits[limit_n].hard = hard < 0 ? RLIM_INFINITY : (rlim_t)hard;
        limit_n++;
      }
    }
    s += len + 1;
  }
}

static void send_file(void) {
  int fd = open(retrieve_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > retrieve_max || st.st_size > (off_t)MAX_FRAME) {
    if (fd >= 0) close(fd);
    frame('N', NULL, 0);
    return;
  }
  unsigned char *data = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (data && got < (size_t)st.st_size) {
    ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (!data || got != (size_t)st.st_size) { frame('N', NULL, 0); return; }
  frame('F', data, (uint32_t)got);
  free(data);
}

static void kill_everything(void) {
  kill(-1, SIGKILL); /* every other process of this uid in the container's pid namespace */
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
}

int main(void) {
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  frame('R', NULL, 0);

  /* Wait for the work. */
  long long last_frame = now_ms();
  for (;;) {
    size_t whole = frame_ready();
    if (whole) {
      char type = (char)in_buf[0];
      unsigned char *payload = in_buf + 5;
      uint32_t n = (uint32_t)(whole - 5);
      if (type == 'X') {
        unsigned char *spec = malloc(n + 1);
        memcpy(spec, payload, n);
        spec[n] = 0;
        consume(whole);
        parse_exec(spec, n);
        break;
      }
      if (type == 'D') {
        char dir[4096];
        if (n == 0 || n > 4095) _exit(6);
        memcpy(dir, payload, n);
        dir[n] = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) { dprintf(2, "container-init: mkdir %s: %s\n", dir, strerror(errno)); _exit(6); }
      } else if (type == 'F') write_file(payload, n);
      else if (type == 'K') return 0;
      consume(whole);
      last_frame = now_ms();
      continue;
    }
    struct pollfd q = { 0, POLLIN, 0 };
    if (poll(&q, 1, 1000) > 0 && fill_input() < 0 && in_eof) return 0; /* the engine went away before giving work */
    if (now_ms() - last_frame > ENGINE_SILENCE_MS) return 0;
  }
  if (!program || argc_n == 0) { frame('S', "error no program\n0 0 0 0", 24); return 0; }
  argv_list[argc_n] = NULL;
  env_list[envc_n] = NULL;

  int in_pipe[2], out_pipe[2], err_pipe[2], exec_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(exec_pipe, O_CLOEXEC)) {
    frame('S', "error pipe failed\n0 0 0 0", 25);
    return 0;
  }
  struct timespec started;
  clock_gettime(CLOCK_MONOTONIC, &started);
  pid_t child = fork();
  if (child < 0) {
    char text[256];
    int k = snprintf(text, sizeof text, "error fork: %s\n0 0 0 0", strerror(errno));
    frame('S', text, (uint32_t)k);
    return 0;
  }
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (chdir(cwd) < 0) {
      dprintf(exec_pipe[1], "cannot enter %s: %s", cwd, strerror(errno));
      _exit(127);
    }
    for (int i = 0; i < limit_n; i++) {
      struct rlimit r = { limits[i].soft, limits[i].hard };
      setrlimit(limits[i].resource, &r);
    }
    execve(program, argv_list, env_list);
    dprintf(exec_pipe[1], "cannot start %s: %s", argv_list[0], strerror(errno));
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  int to_child = in_pipe[1];
  fcntl(to_child, F_SETFL, O_NONBLOCK);
  unsigned char *pending = NULL;
  size_t pending_len = 0;
  int close_after_pending = 0;
  int outs[2] = { out_pipe[0], err_pipe[0] };
  int status = 0, exited = 0, killed = 0;
  char exec_error[512] = "";
  {
    ssize_t k = read(exec_pipe[0], exec_error, sizeof exec_error - 1);
    exec_error[k > 0 ? k : 0] = 0;
    close(exec_pipe[0]);
  }
  struct timespec last_usage = started;
  last_frame = now_ms();

  while (!exited) {
    struct pollfd fds[5];
    int nf = 0;
    fds[nf++] = (struct pollfd){ in_eof ? -1 : 0, POLLIN, 0 };
    fds[nf++] = (struct pollfd){ outs[0], POLLIN, 0 };
    fds[nf++] = (struct pollfd){ outs[1], POLLIN, 0 };
    fds[nf++] = (struct pollfd){ sigfd, POLLIN, 0 };
    fds[nf++] = (struct pollfd){ pending_len && to_child >= 0 ? to_child : -1, POLLOUT, 0 };
    poll(fds, nf, 100);

    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) > 0) {}
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
      if (pid == child) { status = st; exited = 1; }
    }
    for (int i = 0; i < 2; i++) {
      if (outs[i] < 0 || !(fds[1 + i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t r = read(outs[i], buf, sizeof buf);
      if (r > 0) frame(i == 0 ? 'O' : 'E', buf, (uint32_t)r);
      else if (r == 0 || (errno != EINTR && errno != EAGAIN)) { close(outs[i]); outs[i] = -1; }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (fill_input() < 0 && in_eof) { killed = 1; break; } /* the engine went away */
    }
    size_t whole;
    if (now_ms() - last_frame > ENGINE_SILENCE_MS) killed = 1; /* the engine went away */
    while (!killed && (whole = frame_ready())) {
      last_frame = now_ms();
      char type = (char)in_buf[0];
      uint32_t n = (uint32_t)(whole - 5);
      if (type == 'I' && to_child >= 0 && pending_len + n <= MAX_PENDING_STDIN) {
        pending = realloc(pending, pending_len + n);
        memcpy(pending + pending_len, in_buf + 5, n);
        pending_len += n;
      } else if (type == 'C') close_after_pending = 1;
      else if (type == 'K') killed = 1;
      consume(whole);
    }
    if (killed) break;
    if (pending_len && to_child >= 0) {
      ssize_t w = write(to_child, pending, pending_len);
      if (w > 0) { memmove(pending, pending + w, pending_len - (size_t)w); pending_len -= (size_t)w; }
      else if (w < 0 && errno != EAGAIN && errno != EINTR) { pending_len = 0; close(to_child); to_child = -1; }
    }
    if (close_after_pending && pending_len == 0 && to_child >= 0) { close(to_child); to_child = -1; }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - last_usage.tv_sec) * 1000 + (now.tv_nsec - last_usage.tv_nsec) / 1000000 >= 100) {
      usage_frame();
      last_usage = now;
    }
  }

  /* The program ended (or the engine said stop): nothing of the sandbox may go on. */
  kill_everything();
  for (int i = 0; i < 2; i++) {
    while (outs[i] >= 0) {
      char buf[65536];
      ssize_t r = read(outs[i], buf, sizeof buf);
      if (r > 0) frame(i == 0 ? 'O' : 'E', buf, (uint32_t)r);
      else if (r < 0 && errno == EINTR) continue;
      else { close(outs[i]); outs[i] = -1; }
    }
  }
  char text[768];
  int k;
  if (exec_error[0]) k = snprintf(text, sizeof text, "error %s", exec_error);
  else if (!exited) k = snprintf(text, sizeof text, "killed");
  else if (WIFEXITED(status)) k = snprintf(text, sizeof text, "exit %d", WEXITSTATUS(status));
  else k = snprintf(text, sizeof text, "signal %d", WTERMSIG(status));
  struct statvfs vfs;
  long long free_bytes = statvfs("/work", &vfs) == 0 ? (long long)vfs.f_bavail * (long long)vfs.f_frsize : -1;
  k += snprintf(text + k, sizeof text - (size_t)k, "\n%lld %lld %lld %lld %lld", cpu_ns(), read_number(CG "memory/memory.max_usage_in_bytes", NULL),
                read_number(CG "memory/memory.oom_control", "oom_kill"), read_number(CG "pids/pids.events", "max"), free_bytes);
  frame('S', text, (uint32_t)k);
  if (retrieve_path && exited && !exec_error[0]) send_file();
  return 0;
}
`;

const run = promisify(execFile);

/**
 * Builds container-init (statically linked, once per source version) into `dir` and returns its
 * path. It is copied into each Engine once (a volume), so the same binary serves remote Engines.
 */
export async function buildContainerInit(dir: string): Promise<{ path: string; hash: string }> {
  const hash = createHash("sha256").update(CONTAINER_INIT_SOURCE).digest("hex").slice(0, 16);
  const binary = path.join(dir, `container-init-${hash}`);
  if (fs.existsSync(binary)) return { path: binary, hash };
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  const source = path.join(dir, `container-init-${hash}-${process.pid}.c`);
  const temp = `${binary}.${process.pid}.tmp`;
  await fsp.writeFile(source, CONTAINER_INIT_SOURCE);
  try {
    await run("/usr/bin/gcc", ["-O2", "-Wall", "-static", "-o", temp, source], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
    await fsp.chmod(temp, 0o555);
    await fsp.rename(temp, binary);
  } finally {
    await fsp.rm(source, { force: true });
    await fsp.rm(temp, { force: true });
  }
  return { path: binary, hash };
}
