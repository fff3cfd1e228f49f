/**
 * Hostile input, each case against the real sandbox: the user gets a clear outcome in words, other
 * runs and the server carry on, and afterwards no process, cgroup or temp dir of the run remains
 * (checked after every test by expectNothingLeft). Small limit overrides keep the cases fast.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RunRequestSchema, MAX_SOURCE_BYTES, describeZodError } from "../../lib/protocol";
import { startTestEngine, start, runToEnd, c, rust, type TestEngine } from "./helpers";

let t: TestEngine;
beforeAll(async () => {
  t = startTestEngine(220_000, { concurrency: 2 });
  expect((await t.engine.health()).ready).toBe(true);
});
afterEach(async () => await t.expectNothingLeft());
afterAll(async () => {
  await t.dispose();
});

describe("resource exhaustion", () => {
  it("fork bomb: stopped at the process limit while another run carries on", async () => {
    const other = start(t.engine, c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) { usleep(300000); puts("other run fine"); return 0; }\n`));
    const run = await runToEnd(
      t.engine,
      c(`#include <unistd.h>\nint main(void) { for (;;) fork(); }\n`, { limits: { processes: 32, cpuSeconds: 2, wallSeconds: 5 } }),
    );
    expect(run.exit).toMatchObject({ phase: "run", limit: "processes" });
    expect(run.exit!.message).toMatch(/^stopped: process limit of 32 reached; /);
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

  it("CPU spin in many threads is stopped by the tree's CPU time, not per process", async () => {
    const run = await runToEnd(
      t.engine,
      c(`#include <unistd.h>\nint main(void) { for (int i = 0; i < 3; i++) if (fork() == 0) break; for (volatile int i = 0; ; i++); }\n`, {
        limits: { cpuSeconds: 1, wallSeconds: 10 },
      }),
    );
    expect(run.exit).toMatchObject({ limit: "cpu", message: "killed: CPU time limit of 1 s exceeded" });
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
    const other = start(t.engine, c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) { usleep(1500000); puts("other run fine"); return 0; }\n`));
    await other.waitFor((e) => e.type === "running");
    const run = await runToEnd(
      t.engine,
      c(`#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\nint main(void) {\n  printf("kill(-1): %d\\n", kill(-1, SIGKILL));\n  printf("kill(parent %d): %d\\n", (int)getppid(), kill(getppid(), SIGKILL));\n  usleep(200000);\n  puts("still here"); return 0;\n}\n`),
    );
    expect(run.stdout).toContain("kill(parent 1)");
    expect(run.stdout).toContain("still here");
    expect(run.exit).toMatchObject({ exitCode: 0, message: "exited with code 0" });
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
      c(`#include <stdio.h>\n#include <unistd.h>\nint main(void) { FILE *f = fopen("/tmp/first-secret", "w"); fputs("s", f); fclose(f); puts("written"); fflush(stdout); sleep(2); return 0; }\n`),
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
    } finally {
      first.handle.kill();
      await first.finished;
    }
  });

  it("each run gets a fresh prepared sandbox: nothing of the slot's previous run is there", async () => {
    // One slot: both runs use the same uid and sandboxes prepared while the other ran.
    const own = startTestEngine(271_000, { concurrency: 1 });
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
      expect(second.stdout).toMatch(/^\/out:\n\n\/program:\nmain\n\n\/tmp:\n\n\/work:\nmain\.c\n/);
      expect(second.stdout).toMatch(/^sandbox-init$/m); // its own PID 1 …
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
    const own = startTestEngine(272_000, { concurrency: 2, maxWaitSeconds: 600 });
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
    const own = startTestEngine(273_000, { concurrency: 1, maxWaitSeconds: 0 });
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
