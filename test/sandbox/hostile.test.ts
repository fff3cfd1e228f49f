/**
 * Hostile input, each case against the real sandbox: the user gets a clear outcome in words, other
 * runs and the server carry on, and afterwards no process, cgroup or temp dir of the run remains
 * (checked after every test by expectNothingLeft). Small limit overrides keep the cases fast.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RunRequestSchema, MAX_SOURCE_BYTES, KERNEL_SUCCESS_MESSAGE, describeZodError } from "../../lib/protocol";
import { DockerDriver } from "../../sandbox/drivers/docker";
import { startTestDocker, type TestDocker } from "./docker-daemon";
import { startTestEngine, start, runToEnd, c, rust, type TestEngine } from "./helpers";

const ROOT = path.resolve(__dirname, "../..");

// The same cases against each driver: bubblewrap on the host, and containers through the real
// Docker Engine (started here when none runs; the toolchain image is built once per machine).
describe.each([
  { driver: "bwrap", uidBase: 220_000, ownBase: 0 },
  { driver: "docker", uidBase: 300_000, ownBase: 30_000 },
])("$driver driver", ({ driver, uidBase, ownBase }) => {
  let t: TestEngine;
  let docker: TestDocker | undefined;
  beforeAll(async () => {
    if (driver === "docker") docker = await startTestDocker();
    t = startTestEngine(uidBase, { concurrency: 2 }, docker);
    const health = await t.engine.health();
    expect(health.ready, JSON.stringify(health)).toBe(true);
  }, 20 * 60_000);
  afterEach(async () => await t.expectNothingLeft());
  afterAll(async () => {
    await t?.dispose();
    if (t?.driver instanceof DockerDriver) expect(await t.driver.labelledContainers(), "labelled containers after the file").toEqual([]);
    await docker?.stop();
  }, 120_000);

  describe("resource exhaustion", () => {
    it("fork bomb: stopped at the process limit while another run carries on", async () => {
      // The other run waits for a line, so it is surely running all the while the bomb goes off.
      const other = start(t.engine, c(`#include <stdio.h>\nint main(void) { char l[16]; if (!fgets(l, sizeof l, stdin)) return 2; puts("other run fine"); return 0; }\n`));
      await other.waitFor((e) => e.type === "running");
      const run = await runToEnd(
        t.engine,
        c(`#include <unistd.h>\nint main(void) { for (;;) fork(); }\n`, { limits: { processes: 32, cpuSeconds: 2, wallSeconds: 5 } }),
      );
      expect(run.exit).toMatchObject({ phase: "run", limit: "processes" });
      expect(run.exit!.message).toMatch(/^stopped: process limit of 32 reached; /);
      other.handle.writeStdin("go\n");
      expect((await other.finished).stdout).toBe("other run fine\n");
    });

    it("memory bomb: killed at the memory limit", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdlib.h>\n#include <string.h>\nint main(void) { for (;;) { char *p = malloc(1 << 20); if (!p) return 3; memset(p, 1, 1 << 20); } }\n`, {
          limits: { memoryMiB: 64 },
        }),
      );
      expect(run.exit).toMatchObject({ phase: "run", signal: "SIGKILL", limit: "memory", message: "killed: memory limit of 64 MiB exceeded" });
      expect(run.exit!.peakMemoryBytes).toBeGreaterThan(32 * 1024 * 1024);
      expect(run.exit!.peakMemoryBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    });

    it("CPU spin: killed at the CPU-time limit", async () => {
      const run = await runToEnd(t.engine, c(`int main(void) { for (volatile int i = 0; ; i++); }\n`, { limits: { cpuSeconds: 1, wallSeconds: 60 } })); // wall far off: a loaded machine gives a spinning program a small share of a core
      expect(run.exit).toMatchObject({ limit: "cpu", message: "killed: CPU time limit of 1 s exceeded" });
      expect(run.exit!.cpuMs).toBeGreaterThan(500); // rlimit and cgroup count CPU time slightly differently
    });

    it("CPU spin in six processes of three threads each is stopped by the tree's CPU time, not per process", async () => {
      // RLIMIT_CPU counts each process on its own: alone it would let each of the six processes
      // spin for 1 s, 6 s of CPU in all. The cgroup's count of the whole tree stops them at 1 s in
      // all (plus what two cores use between two looks at the count). CPU seconds, not wall time:
      // a loaded machine only makes both take longer.
      const run = await runToEnd(
        t.engine,
        c(
          `#include <pthread.h>\n#include <unistd.h>\nstatic void *spin(void *arg) { for (volatile long i = 0; ; i++); return arg; }\nint main(void) {\n  for (int i = 0; i < 5; i++) if (fork() == 0) break;\n  pthread_t t[2];\n  for (int i = 0; i < 2; i++) pthread_create(&t[i], 0, spin, 0);\n  spin(0);\n}\n`,
          { limits: { cpuSeconds: 1, wallSeconds: 60 } },
        ),
      );
      expect(run.exit).toMatchObject({ phase: "run", limit: "cpu", message: "killed: CPU time limit of 1 s exceeded" });
      expect(run.exit!.cpuMs).toBeGreaterThanOrEqual(950);
      expect(run.exit!.cpuMs, "CPU time of the whole tree when it was stopped").toBeLessThan(3000);
    });

    it("sleep forever: killed at the wall-clock limit", async () => {
      const run = await runToEnd(t.engine, c(`#include <unistd.h>\nint main(void) { for (;;) sleep(1000); }\n`, { limits: { wallSeconds: 1 } }));
      expect(run.exit).toMatchObject({ signal: "SIGKILL", limit: "wall", message: "killed: wall-clock limit of 1 s exceeded" });
    });

    it("output flood of gigabytes: capped, stopped, marked truncated", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <string.h>\nint main(void) { static char b[1 << 16]; memset(b, 'x', sizeof b); for (long i = 0; i < 40000; i++) fwrite(b, 1, sizeof b, stdout); return 0; }\n`, {
          limits: { outputBytes: 256 * 1024 },
        }),
      );
      expect(run.exit).toMatchObject({ limit: "output", message: "stopped: output limit of 256 KiB exceeded", truncated: { stdout: true, stderr: false } });
      expect(run.stdout.length).toBe(256 * 1024);
    });

    it("one huge file: killed at the file-size limit", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\nint main(void) { FILE *f = fopen("big", "w"); static char b[1 << 16]; for (;;) { if (fwrite(b, 1, sizeof b, f) != sizeof b) return 2; fflush(f); } }\n`),
      );
      expect(run.exit).toMatchObject({ signal: "SIGXFSZ", limit: "file-size", message: "killed: file size limit of 16 MiB exceeded" });
    });

    it("filling the disk with many files: the workspace is full, the host is not", async () => {
      const run = await runToEnd(
        t.engine,
        c(
          `#include <stdio.h>\n#include <errno.h>\n#include <string.h>\nint main(void) {\n  static char b[1 << 16];\n  for (int n = 0; ; n++) {\n    char name[32]; snprintf(name, sizeof name, n % 2 ? "/tmp/f%d" : "f%d", n);\n    FILE *f = fopen(name, "w"); if (!f) { printf("open: %s\\n", strerror(errno)); return 1; }\n    for (int i = 0; i < 128; i++) if (fwrite(b, 1, sizeof b, f) != sizeof b || fflush(f)) { printf("write: %s\\n", strerror(errno)); return 1; }\n    fclose(f);\n  }\n}\n`,
          { limits: { memoryMiB: 128 } },
        ),
      );
      expect(run.stdout).toMatch(/No space left on device/);
      expect(run.exit).toMatchObject({ exitCode: 1, limit: "disk" });
      expect(run.exit!.message).toBe("stopped: workspace full (disk limit of 64 MiB); exited with code 1");
    });
  });

  describe("no way out", () => {
    it("sockets: no network at all, not even the server's own 127.0.0.1", async () => {
      let connections = 0;
      const server = net.createServer((s) => {
        connections++;
        s.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const run = await runToEnd(
          t.engine,
          c(`#include <stdio.h>\n#include <errno.h>\n#include <string.h>\n#include <unistd.h>\n#include <arpa/inet.h>\n#include <sys/socket.h>\nint main(void) {\n  int s = socket(AF_INET, SOCK_STREAM, 0);\n  printf("inet: %s\\n", s < 0 ? strerror(errno) : "opened");\n  if (s >= 0) { struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(${port}) }; inet_pton(AF_INET, "127.0.0.1", &a.sin_addr); printf("connect: %s\\n", connect(s, (void*)&a, sizeof a) ? strerror(errno) : "CONNECTED"); }\n  printf("inet6: %s\\n", socket(AF_INET6, SOCK_STREAM, 0) < 0 ? strerror(errno) : "opened");\n  printf("netlink: %s\\n", socket(16, SOCK_RAW, 0) < 0 ? strerror(errno) : "opened");\n  int pair[2];\n  printf("socketpair: %s\\n", socketpair(AF_UNIX, SOCK_STREAM, 0, pair) ? strerror(errno) : "ok");\n  return 0;\n}\n`),
        );
        expect(run.stdout).toContain("inet: Address family not supported by protocol");
        expect(run.stdout).toContain("inet6: Address family not supported by protocol");
        expect(run.stdout).toContain("netlink: Address family not supported by protocol");
        expect(run.stdout).not.toContain("CONNECTED");
        expect(run.stdout).toContain("socketpair: ok");
        expect(run.exit?.exitCode).toBe(0);

        const inRust = await runToEnd(
          t.engine,
          rust(`fn main() { match std::net::TcpStream::connect("127.0.0.1:${port}") { Ok(_) => println!("CONNECTED"), Err(e) => println!("refused: {e}") } }\n`),
        );
        expect(inRust.stdout).toMatch(/^refused: /);
        expect(connections).toBe(0);
      } finally {
        server.close();
      }
    });

    it("cannot read /etc/shadow, /proc/1/environ, the server's environment or the project's files", async () => {
      const secret = `osbx-secret-${Math.random().toString(36).slice(2)}`;
      process.env.OSBYEXAMPLE_TEST_SECRET = secret;
      try {
        const run = await runToEnd(
          t.engine,
          c(`#include <stdio.h>\n#include <dirent.h>\n#include <string.h>\nextern char **environ;\nstatic void dump(const char *path) {\n  FILE *f = fopen(path, "r");\n  if (!f) { printf("%s: unreadable\\n", path); return; }\n  char buf[4096]; size_t n = fread(buf, 1, sizeof buf, f); fclose(f);\n  for (size_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';\n  printf("%s: %.*s\\n", path, (int)n, buf);\n}\nint main(void) {\n  dump("/etc/shadow"); dump("/etc/passwd"); dump("/proc/1/environ"); dump("/proc/self/environ");\n  dump("/work/main/package.json"); dump("/root/.bashrc"); dump("/proc/1/cmdline");\n  DIR *d = opendir("/proc"); struct dirent *e;\n  while ((e = readdir(d))) { char p[300]; snprintf(p, sizeof p, "/proc/%s/environ", e->d_name); if (e->d_name[0] >= '0' && e->d_name[0] <= '9') dump(p); }\n  for (char **v = environ; *v; v++) printf("env %s\\n", *v);\n  return 0;\n}\n`),
        );
        expect(run.exit?.exitCode).toBe(0);
        expect(run.stdout).toContain("/etc/shadow: unreadable");
        expect(run.stdout).toContain("/etc/passwd: unreadable");
        expect(run.stdout).toContain("/proc/1/environ: unreadable");
        expect(run.stdout).toContain("/work/main/package.json: unreadable");
        expect(run.stdout).toContain("/root/.bashrc: unreadable");
        expect(run.stdout).not.toContain(secret);
        expect(run.stdout).not.toMatch(/root:x:0:0|"name": "osbyexample"/);
        expect(run.stdout.match(/^env .*$/gm)?.sort()).toEqual([
          "env HOME=/work",
          "env LANG=C.UTF-8",
          "env LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so",
          "env PATH=/usr/bin:/bin",
          "env PWD=/work",
          "env TMPDIR=/tmp",
          "env _STDBUF_I=0",
          "env _STDBUF_O=L",
        ]);
      } finally {
        delete process.env.OSBYEXAMPLE_TEST_SECRET;
      }
    });

    it('#include "/etc/passwd" at compile time finds no host file', async () => {
      const run = await runToEnd(t.engine, c(`#include "/etc/passwd"\nint main(void) { return 0; }\n`));
      expect(run.compiled?.ok).toBe(false);
      expect(run.diagnostics?.items[0]).toMatchObject({ file: "main.c", line: 1, severity: "error" });
      expect(run.diagnostics?.rendered).toContain("/etc/passwd: No such file or directory");
      expect(JSON.stringify(run.events)).not.toContain("root:x:0:0");
    });

    it("include_str!(\"/etc/passwd\") at compile time finds no host file", async () => {
      const run = await runToEnd(t.engine, rust(`fn main() { print!("{}", include_str!("/etc/passwd")); }\n`));
      expect(run.compiled?.ok).toBe(false);
      expect(run.diagnostics?.items[0]).toMatchObject({ file: "main.rs", line: 1, severity: "error" });
      expect(run.diagnostics?.rendered).toMatch(/couldn't read `\/etc\/passwd`/);
      expect(JSON.stringify(run.events)).not.toContain("root:x:0:0");
    });

    it("kill(-1, SIGKILL) and killing the parent hurt neither the server nor another run", async () => {
      const other = start(t.engine, c(`#include <stdio.h>\nint main(void) { char l[16]; if (!fgets(l, sizeof l, stdin)) return 2; puts("other run fine"); return 0; }\n`));
      await other.waitFor((e) => e.type === "running");
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\nint main(void) {\n  printf("kill(-1): %d\\n", kill(-1, SIGKILL));\n  printf("kill(parent %d): %d\\n", (int)getppid(), kill(getppid(), SIGKILL));\n  usleep(200000);\n  puts("still here"); return 0;\n}\n`),
      );
      expect(run.stdout).toContain("kill(parent 1)");
      expect(run.stdout).toContain("still here");
      expect(run.exit).toMatchObject({ exitCode: 0, message: "exited with code 0" });
      other.handle.writeStdin("go\n");
      expect((await other.finished).stdout).toBe("other run fine\n");
    });

    it("a daemonised child dies when main() returns", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n  if (fork() == 0) { setsid(); if (fork() == 0) { for (;;) { sleep(1); puts("daemon"); fflush(stdout); } } return 0; }\n  usleep(100000); puts("main done"); return 0;\n}\n`, { limits: { wallSeconds: 30 } }),
      );
      expect(run.exit).toMatchObject({ exitCode: 0, limit: null, message: "exited with code 0" });
      expect(run.exit!.wallMs).toBeLessThan(20_000);
      expect(run.stdout).toBe("main done\n");
    });

    it("a program that closes stdout and keeps running is still stopped", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) { puts("bye"); fflush(stdout); close(1); close(2); for (;;) sleep(1); }\n`, { limits: { wallSeconds: 1 } }),
      );
      expect(run.stdout).toBe("bye\n");
      expect(run.exit).toMatchObject({ limit: "wall", message: "killed: wall-clock limit of 1 s exceeded" });
    });

    it("runs cannot see each other: processes, files, /tmp", async () => {
      const first = start(
        t.engine,
        // It waits for a line after writing: surely running while the second looks.
        c(`#include <stdio.h>\nint main(void) { FILE *f = fopen("/tmp/first-secret", "w"); fputs("s", f); fclose(f); puts("written"); fflush(stdout); char l[16]; return fgets(l, sizeof l, stdin) ? 0 : 2; }\n`),
      );
      try {
        await first.waitFor((e) => e.type === "stdout");
        const second = await runToEnd(
          t.engine,
          c(`#include <stdlib.h>\nint main(void) { return system("ls /tmp /work; ls /proc | grep -c '^[0-9]'; cat /tmp/first-secret 2>&1 | head -1"); }\n`),
        );
        expect(second.stdout).toMatch(/^\/tmp:\n\n\/work:\nmain\.c\n/); // an empty /tmp of its own
        expect(second.stdout).toMatch(/^[345]$/m); // its own PID 1, the program, sh, ls/grep: nothing of the other run
        expect(second.stdout).toContain("/tmp/first-secret: No such file or directory");
        expect(first.collected.exit, "the first run still going while the second looked").toBeUndefined();
        first.handle.writeStdin("done\n");
        expect((await first.finished).exit).toMatchObject({ exitCode: 0 });
      } finally {
        first.handle.kill();
        await first.finished;
      }
    });

    it("each run gets a fresh prepared sandbox: nothing of the slot's previous run is there", async () => {
      // One slot: both runs use the same uid and sandboxes prepared while the other ran.
      const own = startTestEngine(271_000 + ownBase, { concurrency: 1 }, docker);
      try {
        const first = await runToEnd(
          own.engine,
          c(`#include <stdio.h>\n#include <stdlib.h>\nint main(void) { fclose(fopen("/tmp/left", "w")); fclose(fopen("/work/left", "w")); fclose(fopen("/out/left", "w")); return system("sleep 30 &"); }\n`),
        );
        expect(first.exit).toMatchObject({ exitCode: 0 });
        expect((await own.engine.health()).preparedSandboxes).toBeGreaterThan(0);
        const second = await runToEnd(
          own.engine,
          c(`#include <stdlib.h>\nint main(void) { return system("ls -A /tmp /work /out /program; cat /proc/[0-9]*/comm"); }\n`),
        );
        // (In a container /tmp, /out and /program are folders of the one workspace, linked from the image.)
        const work = driver === "docker" ? "\\.out\\n\\.program\\n\\.tmp\\nmain\\.c" : "main\\.c";
        expect(second.stdout).toMatch(new RegExp(`^/out:\\n\\n/program:\\nmain\\n\\n/tmp:\\n\\n/work:\\n${work}\\n`));
        expect(second.stdout).toMatch(driver === "docker" ? /^container-init$/m : /^sandbox-init$/m); // its own PID 1 …
        expect(second.stdout).not.toMatch(/^sleep$/m); // … and nothing the first run left running
        await own.expectNothingLeft();
      } finally {
        await own.dispose();
      }
    });

    it("is root nowhere: an unprivileged uid inside and outside, no capabilities", async () => {
      const run = start(t.engine, c(`#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\nint main(void) { printf("uid=%d euid=%d gid=%d\\n", (int)getuid(), (int)geteuid(), (int)getgid()); fflush(stdout); system("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"); sleep(2); return 0; }\n`));
      try {
        await run.waitFor(() => run.collected.stdout.includes("CapAmb"));
        const uid = Number(/uid=(\d+)/.exec(run.collected.stdout)![1]);
        expect(uid).toBeGreaterThanOrEqual(t.uidBase);
        expect(uid).toBeLessThan(t.uidBase + t.concurrency);
        expect(run.collected.stdout).toContain(`euid=${uid} gid=${uid}`);
        for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) expect(run.collected.stdout).toMatch(new RegExp(`${cap}:\\s+0+\\n`));
        // Seen from the host, every process of the run belongs to that uid, none to root.
        const { processesOfUids } = await import("./helpers");
        expect(processesOfUids(uid, uid + 1).length).toBeGreaterThanOrEqual(2);
      } finally {
        run.handle.kill();
        await run.finished;
      }
    });

    it("blocked system calls fail; namespaces cannot be made", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#define _GNU_SOURCE\n#include <stdio.h>\n#include <sched.h>\n#include <errno.h>\n#include <string.h>\n#include <sys/mount.h>\n#include <sys/ptrace.h>\nint main(void) {\n  printf("unshare: %s\\n", unshare(CLONE_NEWUSER) ? strerror(errno) : "ok");\n  printf("mount: %s\\n", mount("none", "/tmp", "tmpfs", 0, 0) ? strerror(errno) : "ok");\n  printf("ptrace: %s\\n", ptrace(PTRACE_TRACEME, 0, 0, 0) ? strerror(errno) : "ok");\n  return 0;\n}\n`),
      );
      expect(run.stdout).toBe("unshare: Operation not permitted\nmount: Operation not permitted\nptrace: Operation not permitted\n");
    });
  });

  describe("odd output and input", () => {
    it("invalid UTF-8 becomes U+FFFD; characters split across writes arrive whole", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n  fputs("bad:\\xff\\xfe:end\\n", stdout); fflush(stdout);\n  const char euro[] = "\\xe2\\x82\\xac";\n  for (int i = 0; i < 3; i++) { write(1, euro + i, 1); usleep(50000); }\n  write(1, "\\n\\xe2\\x82", 3);\n  return 0;\n}\n`),
      );
      expect(run.stdout).toBe("bad:\uFFFD\uFFFD:end\n€\n\uFFFD");
      expect(run.exit?.exitCode).toBe(0);
    });

    it("huge source, unknown language, unknown flag and escaping names are refused by the schema", () => {
      const huge = RunRequestSchema.safeParse({ language: "c", files: [{ name: "main.c", content: "x".repeat(MAX_SOURCE_BYTES + 1) }] });
      expect(huge.success).toBe(false);
      expect(describeZodError(huge.error!)).toContain("larger than 256 KiB");
      const cobol = RunRequestSchema.safeParse({ language: "cobol", files: [{ name: "main.c", content: "" }] });
      expect(cobol.success).toBe(false);
      const flag = RunRequestSchema.safeParse({ language: "c", files: [{ name: "main.c", content: "" }], flags: ["-fplugin=/tmp/x.so"] });
      expect(describeZodError(flag.error!)).toContain("flag not allowed for c: -fplugin=/tmp/x.so");
      const rustFlag = RunRequestSchema.safeParse({ language: "rust", files: [{ name: "main.rs", content: "" }], flags: ["-O2"] });
      expect(rustFlag.success).toBe(false);
      for (const name of ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b"]) {
        expect(RunRequestSchema.safeParse({ language: "c", files: [{ name, content: "" }] }).success, name).toBe(false);
      }
    });
  });

  describe("admission", () => {
    it("50 runs of one example from 50 clients at once: all served, one compile, positions that only go down", async () => {
      const code = `#include <stdio.h>\nint main(int argc, char **argv) { printf("run %s\\n", argv[1]); return 0; }\n`;
      // A generous bound: this test is about who is served, not about this machine's speed.
      const own = startTestEngine(272_000 + ownBase, { concurrency: 2, maxWaitSeconds: 600 }, docker);
      try {
        const runs = Array.from({ length: 50 }, (_, i) => start(own.engine, c(code, { args: [String(i)] }), { client: `10.0.0.${i}` }));
        const results = await Promise.all(runs.map((r) => r.finished));
        for (const [i, r] of results.entries()) expect(r.stdout, JSON.stringify(r.error ?? r.exit)).toBe(`run ${i}\n`);
        // Single-flight: one run compiled, every other one used its binary.
        expect(results.filter((r) => r.compiled?.cached === false)).toHaveLength(1);
        const positions = results.map((r) => r.events.filter((e) => e.type === "queued"));
        expect(positions.filter((p) => p.length > 0).length).toBeGreaterThan(0);
        for (const p of positions) {
          for (let i = 1; i < p.length; i++) expect((p[i] as { position: number }).position).toBeLessThanOrEqual((p[i - 1] as { position: number }).position);
          for (const e of p) expect((e as { estimatedWaitMs?: number }).estimatedWaitMs).toBeTypeOf("number");
        }
        expect(await own.engine.health()).toMatchObject({ running: 0, queued: 0 });
        await own.expectNothingLeft();
      } finally {
        await own.dispose();
      }
    });

    it("one client's many waiting runs delay another client's single run by at most one run", async () => {
      const code = `#include <stdio.h>\n#include <unistd.h>\nint main(void) { usleep(200000); puts("done"); return 0; }\n`;
      await runToEnd(t.engine, c(code)); // compiled: what follows only waits for slots
      const script = Array.from({ length: 12 }, () => start(t.engine, c(code), { client: "script" }));
      const student = start(t.engine, c(code), { client: "student" });
      const queued = (await student.waitFor((e) => e.type === "queued")) as { position: number };
      expect(queued.position).toBeLessThanOrEqual(2); // behind at most one of the script's runs
      await Promise.all([...script, student].map((r) => r.finished));
      expect(student.collected.stdout).toBe("done\n");
    });

    it("a run that would wait beyond the bound is refused with the estimated wait", async () => {
      const own = startTestEngine(273_000 + ownBase, { concurrency: 1, maxWaitSeconds: 0 }, docker);
      try {
        const sleeper = start(own.engine, c(`#include <unistd.h>\nint main(void) { sleep(2); return 0; }\n`));
        await sleeper.waitFor((e) => e.type === "running");
        const refused = await runToEnd(own.engine, c(`int main(void) { return 0; }\n`));
        expect(refused.error).toMatchObject({ code: "busy" });
        expect(refused.error!.message).toMatch(/an estimated [\d.]+ s for this one, over the server's bound of 0\.0 s/);
        expect((refused.error as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect((await sleeper.finished).exit?.exitCode).toBe(0);
        await own.expectNothingLeft();
      } finally {
        await own.dispose();
      }
    });
  });

  // Container-only checks exist only for the Docker driver (defined, not skipped, for bwrap).
  if (driver === "docker") describe("container", () => {
    it("the root file system is read-only, the Docker socket is not there, no capability, not root", async () => {
      const run = await runToEnd(
        t.engine,
        c(`#include <stdio.h>\n#include <errno.h>\n#include <string.h>\n#include <unistd.h>\n#include <sys/stat.h>\nstatic void try_write(const char *p) { FILE *f = fopen(p, "w"); printf("%s: %s\\n", p, f ? "WRITTEN" : strerror(errno)); }\nint main(void) {\n  try_write("/usr/x"); try_write("/etc/x"); try_write("/x");\n  struct stat st;\n  const char *sockets[] = { "/var/run/docker.sock", "/run/docker.sock", "/run/osbyexample-test-docker.sock" };\n  for (int i = 0; i < 3; i++) printf("%s: %s\\n", sockets[i], stat(sockets[i], &st) ? strerror(errno) : "PRESENT");\n  printf("uid=%d gid=%d\\n", (int)getuid(), (int)getgid());\n  fflush(stdout);\n  return system("grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");\n}\n`),
      );
      expect(run.exit?.exitCode).toBe(0);
      for (const p of ["/usr/x", "/etc/x", "/x"]) expect(run.stdout).toContain(`${p}: Read-only file system`);
      for (const p of ["/var/run/docker.sock", "/run/docker.sock", "/run/osbyexample-test-docker.sock"]) {
        expect(run.stdout).toContain(`${p}: No such file or directory`);
      }
      const uid = Number(/uid=(\d+)/.exec(run.stdout)![1]);
      expect(uid).toBeGreaterThanOrEqual(t.uidBase);
      expect(uid).toBeLessThan(t.uidBase + 2);
      expect(run.stdout).toMatch(/CapEff:\s+0+\n/);
      expect(run.stdout).toMatch(/CapBnd:\s+0+\n/);
      expect(run.stdout).toMatch(/NoNewPrivs:\s+1\n/);
      expect(run.stdout).toMatch(/Seccomp:\s+2\n/); // a filter is installed
    });

    it("the container is created as the issue demands: no network, read-only, no caps, limits, our seccomp profile", async () => {
      const run = start(
        t.engine,
        c(`#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\nint main(void) { fflush(stdout); system("grep -E '^Max (open files|file size|core file size|cpu time)' /proc/self/limits"); sleep(30); return 0; }\n`, {
          limits: { memoryMiB: 96, processes: 24 },
        }),
      );
      try {
        await run.waitFor(() => run.collected.stdout.includes("Max open files"));
        expect(run.collected.stdout).toMatch(/Max cpu time\s+5\s+6\s+seconds/);
        expect(run.collected.stdout).toMatch(/Max file size\s+16777216\s+16777216\s+bytes/);
        expect(run.collected.stdout).toMatch(/Max core file size\s+0\s+0\s+bytes/);
        expect(run.collected.stdout).toMatch(/Max open files\s+64\s+64\s+files/);
        const docker = (t.driver as DockerDriver).docker;
        let list: Awaited<ReturnType<typeof docker.listContainers>> = [];
        for (let i = 0; i < 100 && list.length === 0; i++) {
          const waiting = (t.driver as DockerDriver).waiting();
          const candidates = (await docker.listContainers({ filters: { label: ["org.osbyexample.sandbox"], name: [`osbe-${t.prefix}`] } })).filter(
            (c) => !waiting.includes(c.Id),
          );
          // The one running the program (others may be prepared or going away).
          list = [];
          for (const c of candidates) {
            const top = await docker.getContainer(c.Id).top().catch(() => ({ Processes: [] as string[][] }));
            if ((top.Processes ?? []).some((p: string[]) => p.at(-1)?.includes("main"))) list.push(c);
          }
          if (list.length === 0) await new Promise((r) => setTimeout(r, 100));
        }
        expect(list).toHaveLength(1);
        const info = await docker.getContainer(list[0]!.Id).inspect();
        const hc = info.HostConfig;
        expect(hc.NetworkMode).toBe("none");
        expect(hc.ReadonlyRootfs).toBe(true);
        expect(hc.CapDrop).toEqual(["ALL"]);
        expect(hc.SecurityOpt?.some((o: string) => o === "no-new-privileges")).toBe(true);
        expect(hc.SecurityOpt?.some((o: string) => o.startsWith("seccomp=") && o.includes("SCMP_ACT_ERRNO"))).toBe(true);
        expect(hc.Memory).toBe(96 * 1024 * 1024);
        expect(hc.MemorySwap).toBe(96 * 1024 * 1024);
        expect(hc.PidsLimit).toBe(24);
        expect(hc.CpuShares).toBe(512);
        // The container's ulimits cap every process; container-init sets the run's own within them.
        expect((hc.Ulimits ?? []).map((u) => u.Name).sort()).toEqual(["core", "fsize", "nofile", "nproc"]);
        expect(hc.Tmpfs?.["/work"]).toMatch(/size=67108864/);
        expect([`${t.uidBase}:${t.uidBase}`, `${t.uidBase + 1}:${t.uidBase + 1}`]).toContain(info.Config.User);
        expect(info.Config.Labels?.["org.osbyexample.owner"]).toContain(String(process.pid));
      } finally {
        run.handle.kill();
        await run.finished;
      }
    });

    it("a crashed server leaves no container: its containers stop with their stream, stale ones go at the next start", async () => {
      const api = (t.driver as DockerDriver).docker;
      // A server that dies in the middle of a run (kill -9): container-init sees its stream close.
      const SLEEPER = `#include <stdio.h>\n#include <unistd.h>\nint main(void) { puts("up"); fflush(stdout); sleep(60); }\n`;
      const script = path.join(t.tempRoot, "crashing-server.mts");
      fs.writeFileSync(
        script,
        `import { createEngine } from ${JSON.stringify(path.join(ROOT, "sandbox/index.ts"))};
        import { DockerDriver, defaultDockerOptions } from ${JSON.stringify(path.join(ROOT, "sandbox/drivers/docker.ts"))};
        const driver = new DockerDriver({ ...defaultDockerOptions(), image: ${JSON.stringify((t.driver as DockerDriver).options.image)}, uidBase: ${t.uidBase + 10} });
        const engine = createEngine({ driver, namePrefix: "crash-${process.pid}", concurrency: 1, cacheDir: ${JSON.stringify(path.join(t.tempRoot, "crash-cache"))} });
        engine.run({ language: "c", files: [{ name: "main.c", content: ${JSON.stringify(SLEEPER)}}], flags: [], args: [] },
          (e) => { if (e.type === "stdout") console.log("RUNNING"); else if (e.type === "exit" || e.type === "error") console.log(JSON.stringify(e)); });
        `,
      );
      // node itself (not the tsx wrapper, whose child would survive the kill).
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        cwd: ROOT,
        env: { ...process.env, DOCKER_HOST: docker!.host },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const crashed = `osbe-crash-${process.pid}`;
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", (d: Buffer) => d.toString().includes("RUNNING") && resolve());
          let said = "";
          child.stdout!.on("data", (d: Buffer) => (said += d.toString()));
          child.once("exit", (code) => reject(new Error(`the child engine exited early (${code}): ${said}`)));
        });
        const before = await api.listContainers({ all: true, filters: { name: [crashed] } });
        expect(before.length).toBeGreaterThan(0);
      } finally {
        child.kill("SIGKILL");
        fs.rmSync(script, { force: true });
        fs.rmSync(path.join(t.tempRoot, "crash-cache"), { recursive: true, force: true });
      }
      // Started containers stop when their stream closes or falls silent for 20 s (and Docker
      // removes them); one the server had only created, never started, waits for the next start.
      let running = ["?"];
      for (let i = 0; i < 600 && running.length > 0; i++) {
        running = (await api.listContainers({ all: true, filters: { name: [crashed] } })).filter((c) => c.State !== "created").map((c) => `${c.Names[0]} ${c.State}`);
        if (running.length) await new Promise((r) => setTimeout(r, 100));
      }
      expect(running, "started containers of the crashed server").toEqual([]);

      // A labelled container whose owner is gone (e.g. the Engine was down when its server died).
      const stale = await api.createContainer({
        name: `osbe-stale-${process.pid}`,
        Image: (t.driver as DockerDriver).options.image,
        Cmd: ["/bin/true"],
        Labels: { "org.osbyexample.sandbox": "1", "org.osbyexample.owner": `${os.hostname()} 999999999 1` },
        HostConfig: { NetworkMode: "none" },
      });
      const next = new DockerDriver({ ...(t.driver as DockerDriver).options, uidBase: t.uidBase + 20 });
      await next.prepare();
      await expect(stale.inspect()).rejects.toMatchObject({ statusCode: 404 });
      expect(await api.listContainers({ all: true, filters: { name: [crashed] } }), "containers of the crashed server after the next start").toEqual([]);
      await next.close();
    }, 180_000);

    it("the kernel lab builds and boots in containers too", async () => {
      const run = await runToEnd(t.engine, { language: "kernel", kernel: "osbe" });
      expect(run.compiled, JSON.stringify(run.events).slice(0, 1500)).toMatchObject({ ok: true });
      expect(run.stdout).toContain("Hello from the OSByExample kernel!");
      expect(run.exit).toMatchObject({ phase: "run", message: KERNEL_SUCCESS_MESSAGE });
    }, 180_000);

    it("stdin streams in while the program runs", async () => {
      const run = start(t.engine, c(`#include <stdio.h>\nint main(void) { char line[64]; printf("name? "); while (fgets(line, sizeof line, stdin)) printf("hello %s", line); puts("bye"); return 0; }\n`));
      await run.waitFor(() => run.collected.stdout.includes("name? "));
      run.handle.writeStdin("Ada\n");
      await run.waitFor(() => run.collected.stdout.includes("hello Ada"));
      run.handle.writeStdin("Grace\n");
      await run.waitFor(() => run.collected.stdout.includes("hello Grace"));
      run.handle.closeStdin();
      const done = await run.finished;
      expect(done.stdout).toBe("name? hello Ada\nhello Grace\nbye\n");
      expect(done.exit?.exitCode).toBe(0);
    });
  });
});
