/**
 * The wire against the real engine: WebSocket /ws and POST /api/run on a real HTTP server.
 * Next.js is left out (it has its own tests); everything between socket and sandbox is real.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type ServerMessage, type RunEventMessage, WS_CLOSE } from "../../lib/protocol";
import { osbeProfile } from "../../sandbox/kernels/profile";
import type { Engine } from "../../sandbox/api";
import type { RunEvent } from "../../lib/protocol";
import { createClientLimiter } from "../../server/client-limits";
import { createRunApi } from "../../server/run-api";
import { createRunSocket, type RunSocket } from "../../server/run-socket";
import { startTestEngine, type TestEngine } from "../sandbox/helpers";

let t: TestEngine;
let engine: Engine;
let runSocket: RunSocket;
let server: http.Server;
let base: string;
/** How each run the engine ran ended (its exit or error event), by the run's first argument. */
const endsByTag = new Map<string, RunEvent>();

beforeAll(async () => {
  t = startTestEngine(250_000);
  // The server's engine, watched: a test tags a run with its first argument and reads here how the
  // engine ended it, also after the client that started it is gone.
  engine = {
    ...t.engine,
    run(request, sink, options) {
      const tag = "args" in request ? request.args[0] : undefined;
      return t.engine.run(
        request,
        (event) => {
          if (tag && (event.type === "exit" || event.type === "error")) endsByTag.set(tag, event);
          sink(event);
        },
        options,
      );
    },
  };
  const limiter = createClientLimiter();
  const api = createRunApi(engine, limiter);
  runSocket = createRunSocket(engine, limiter);
  server = http.createServer((req, res) => {
    if (!api(req, res)) res.writeHead(404).end();
  });
  server.on("upgrade", (req, socket, head) => {
    if (!runSocket.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await runSocket.close();
  await new Promise((resolve) => server.close(resolve));
  await t.expectNothingLeft();
  await t.dispose();
});

const HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello from C\\n"); return 0; }\n';
const ECHO_C = `#include <stdio.h>
#include <ctype.h>
int main(void) {
  int c;
  while ((c = getchar()) != EOF) putchar(toupper(c));
  printf("[eof]\\n");
  return 0;
}
`;

/** A connected client that records every message and can wait for one. */
async function connect() {
  const ws = new WebSocket(`ws://${base}/ws`);
  const messages: ServerMessage[] = [];
  const waiters: Array<() => void> = [];
  ws.on("message", (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const waitFor = async (predicate: (m: ServerMessage) => boolean, timeoutMs = 30_000): Promise<ServerMessage> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  const eventsOf = (id: string) =>
    messages.filter((m): m is RunEventMessage => m.type !== "protocol-error" && (m as RunEventMessage).id === id);
  const stdoutOf = (id: string) =>
    eventsOf(id)
      .map((m) => (m.type === "stdout" ? m.data : ""))
      .join("");
  const send = (message: unknown) => ws.send(typeof message === "string" ? message : JSON.stringify(message));
  const isEnd = (id: string) => (m: ServerMessage) => "id" in m && m.id === id && (m.type === "exit" || m.type === "error");
  return { ws, messages, waitFor, eventsOf, stdoutOf, send, isEnd };
}

describe("WebSocket /ws", () => {
  it("streams a C run's events in order, tagged with the run id", async () => {
    const client = await connect();
    client.send({ type: "run", id: "r1", language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    const exit = await client.waitFor(client.isEnd("r1"));
    expect(exit).toMatchObject({ id: "r1", type: "exit", phase: "run", exitCode: 0 });
    const types = client.eventsOf("r1").map((m) => m.type);
    expect(types).toContain("compiled");
    expect(types.indexOf("running")).toBeGreaterThan(types.indexOf("compiled"));
    expect(types.at(-1)).toBe("exit");
    expect(client.stdoutOf("r1")).toBe("hello from C\n");
    client.ws.close();
  });

  it("feeds stdin typed while the program runs, then end-of-file", async () => {
    const client = await connect();
    client.send({ type: "run", id: "echo", language: "c", files: [{ name: "main.c", content: ECHO_C }] });
    await client.waitFor((m) => "id" in m && m.id === "echo" && m.type === "running");
    client.send({ type: "stdin", id: "echo", data: "hello\n" });
    await client.waitFor(() => client.stdoutOf("echo").includes("HELLO"));
    client.send({ type: "stdin-close", id: "echo" });
    const exit = await client.waitFor(client.isEnd("echo"));
    expect(exit).toMatchObject({ type: "exit", exitCode: 0 });
    expect(client.stdoutOf("echo")).toBe("HELLO\n[eof]\n");
    client.ws.close();
  });

  it("answers malformed messages with a protocol error that says what is wrong, and lives on", async () => {
    const client = await connect();
    client.send("this is not json");
    client.send({ type: "launch", id: "x" });
    client.send({ type: "run", id: "bad", language: "cobol", files: [{ name: "main.c", content: "" }] });
    client.send({ type: "run", id: "evil", language: "c", files: [{ name: "../../etc/x.c", content: "" }] });
    client.send({ type: "run", id: "flag", language: "c", flags: ["-fplugin=/tmp/x.so"], files: [{ name: "main.c", content: "" }] });
    client.send({ type: "stdin", id: "nobody", data: "x" });
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await client.waitFor(() => client.messages.filter((m) => m.type === "protocol-error").length >= 7);
    const errors = client.messages.filter((m) => m.type === "protocol-error").map((m) => m.message);
    expect(errors[0]).toMatch(/not valid JSON/);
    expect(errors[1]).toMatch(/invalid message/);
    expect(errors.join("\n")).toMatch(/language/);
    expect(errors.join("\n")).toMatch(/\.\./);
    expect(errors.join("\n")).toMatch(/flag not allowed for c: -fplugin/);
    expect(errors.join("\n")).toMatch(/no run with id 'nobody'/);
    expect(errors.join("\n")).toMatch(/binary/);
    // Still usable after all that.
    client.send({ type: "run", id: "after", language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    expect(await client.waitFor(client.isEnd("after"))).toMatchObject({ type: "exit", exitCode: 0 });
    client.ws.close();
  });

  // A program that would sleep far past the test's deadlines: only a kill ends it in time. Its
  // wall-clock limit (60 s, the server's maximum) is twice the 30 s the test waits, and sleeping
  // uses no CPU, so no limit can stand in for the kill; the exact message tells them apart anyway.
  const SLEEPER = {
    language: "c",
    files: [{ name: "main.c", content: "#include <unistd.h>\nint main(void) { for (;;) sleep(1000); }\n" }],
    limits: { wallSeconds: 60 },
  };

  it("kills a run on request: the run ends at once, stopped on request", async () => {
    const client = await connect();
    client.send({ type: "run", id: "k", ...SLEEPER, args: ["kill-request"] });
    await client.waitFor((m) => "id" in m && m.id === "k" && m.type === "running");
    client.send({ type: "kill", id: "k" });
    const end = await client.waitFor(client.isEnd("k"), 30_000);
    expect(end).toMatchObject({ type: "exit", phase: "run", signal: "SIGKILL", limit: null, message: "stopped: killed on request" });
    client.ws.close();
  });

  it("closing the connection kills its runs", async () => {
    const client = await connect();
    client.send({ type: "run", id: "orphan", ...SLEEPER, args: ["orphaned"] });
    await client.waitFor((m) => "id" in m && m.id === "orphan" && m.type === "running");
    client.ws.close();
    const deadline = Date.now() + 30_000;
    while (!endsByTag.has("orphaned") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(endsByTag.get("orphaned")).toMatchObject({ type: "exit", phase: "run", limit: null, message: "stopped: killed on request" });
    await t.expectNothingLeft();
  });

  it("refuses a second run with an id that is still going", async () => {
    const client = await connect();
    client.send({ type: "run", id: "dup", ...SLEEPER });
    client.send({ type: "run", id: "dup", language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    const err = await client.waitFor((m) => m.type === "protocol-error");
    expect(err).toMatchObject({ id: "dup", message: expect.stringMatching(/already going/) });
    client.send({ type: "kill", id: "dup" });
    await client.waitFor(client.isEnd("dup"));
    client.ws.close();
  });
});

describe("POST /api/run", () => {
  const post = (body: string | object, headers: Record<string, string> = {}) =>
    fetch(`http://${base}/api/run`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  it("runs `code` as the main file and answers with compile, run and toolchain", async () => {
    const res = await post({ language: "c", code: HELLO_C });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.compile).toMatchObject({ ok: true, exitCode: 0, diagnostics: [] });
    expect(body.run).toMatchObject({ exitCode: 0, signal: null, stdout: "hello from C\n", limit: null });
    expect(body.toolchain.name).toMatch(/gcc/i);
    expect(body.toolchain.version).toMatch(/\d+\.\d+/);
  });

  it("runs Rust with stdin and args", async () => {
    const code = `use std::io::Read;
fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{} | {}", input.trim(), args.join(","));
}
`;
    const res = await post({ language: "rust", code, stdin: "from stdin\n", args: ["a", "b c"] });
    const body = await res.json();
    expect(body.run.stdout).toBe("from stdin | a,b c\n");
    expect(body.toolchain.name).toMatch(/rustc/);
  });

  it("gives a program that reads stdin end-of-file when the request has none", async () => {
    const res = await post({ language: "c", code: ECHO_C });
    const body = await res.json();
    expect(body.run).toMatchObject({ exitCode: 0, stdout: "[eof]\n", limit: null });
  });

  it("reports a compile error with structured diagnostics and no run", async () => {
    const res = await post({ language: "c", files: [{ name: "main.c", content: "int main(void) {\n  return x;\n}\n" }] });
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.compile.ok).toBe(false);
    expect(body.run).toBeNull();
    expect(body.compile.diagnostics).toContainEqual(
      expect.objectContaining({ file: "main.c", line: 2, severity: "error" }),
    );
    expect(body.compile.stderr).toMatch(/main\.c:2/);
    // Each line of the compiler's text once, not once as diagnostic text and again as "other output".
    const fatal = await (await post({ language: "c", code: '#include "missing.h"\nint main(void) { return 0; }\n' })).json();
    expect(fatal.compile.stderr.match(/compilation terminated/g)).toHaveLength(1);
  });

  it("refuses malformed requests with 400 and says why", async () => {
    for (const [body, pattern] of [
      ["{not json", /not valid JSON/],
      [{ language: "c" }, /exactly one of 'files' or 'code'/],
      [{ language: "fortran", code: "x" }, /language/],
      [{ language: "c", code: "x", flags: ["-o/etc/passwd"] }, /flag not allowed/],
      [{ language: "c", files: [{ name: "/etc/passwd", content: "" }] }, /relative/],
      [{ language: "c", code: "x", surprise: 1 }, /surprise|unrecognized/i],
    ] as const) {
      const res = await post(body as object | string);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json()).error).toMatch(pattern);
    }
  });

  it("refuses a source over 256 KiB with 413", async () => {
    const res = await post({ language: "c", code: "x".repeat(300 * 1024) });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toMatch(/256 KiB/);
  });

  it("answers GET /api/health with readiness and toolchains", async () => {
    const res = await fetch(`http://${base}/api/health`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.ready).toBe(true);
    const languages = body.toolchains.map((t: { language: string }) => t.language);
    expect(languages).toEqual(expect.arrayContaining(["c", "rust"]));
  });
});

describe("a busy engine", () => {
  it("answers 503 with Retry-After when the queue is full", async () => {
    const own = startTestEngine(251_000, { concurrency: 1, maxWaitSeconds: 0 });
    const tiny = own.engine;
    const limiter = createClientLimiter();
    const api = createRunApi(tiny, limiter);
    const busyServer = http.createServer((req, res) => void api(req, res));
    await new Promise<void>((resolve) => busyServer.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(busyServer.address() as AddressInfo).port}/api/run`;
    try {
      const sleeper = fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ language: "c", code: "#include <unistd.h>\nint main(void){ sleep(3); return 0; }\n" }),
      });
      // Wait until the first run holds the only slot.
      const deadline = Date.now() + 30_000;
      while ((await tiny.health()).running === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await tiny.health()).running, "the first run holds the only slot").toBe(1);
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ language: "c", code: HELLO_C }) });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
      expect((await res.json()).error).toMatch(/busy/i);
      expect((await sleeper).status).toBe(200);
    } finally {
      await new Promise((resolve) => busyServer.close(resolve));
      await own.dispose();
    }
  });
});

describe("kernel runs on the wire", () => {
  const hello = (words: string) =>
    fs.readFileSync(path.join(osbeProfile().sourceDir, "src/hello.rs"), "utf8").replace("Hello from the OSByExample kernel!", words);
  const post = (body: object) =>
    fetch(`http://${base}/api/run`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  it("/ws streams a kernel's serial console as stdout, then the outcome in words", async () => {
    const client = await connect();
    client.send({ type: "run", id: "k1", language: "kernel", kernel: "osbe", files: [{ name: "src/hello.rs", content: hello("over the socket") }] });
    const exit = await client.waitFor(client.isEnd("k1"));
    expect(exit).toMatchObject({ type: "exit", phase: "run", exitCode: 33, message: "kernel exited: success" });
    const types = client.eventsOf("k1").map((m) => m.type);
    expect(types.indexOf("running")).toBeGreaterThan(types.indexOf("compiled"));
    expect(client.stdoutOf("k1")).toMatch(/^over the socket\n\[syscall\] int 0x80 is ready\n[\s\S]*\[kernel\] all tasks finished, shutting down\n$/);
    // A file the kernel does not let a slide replace: an `invalid` error naming the allowed ones.
    client.send({ type: "run", id: "k2", language: "kernel", kernel: "osbe", files: [{ name: "Cargo.toml", content: "" }] });
    expect(await client.waitFor(client.isEnd("k2"))).toMatchObject({ type: "error", code: "invalid", message: expect.stringMatching(/allowed: src\/hello\.rs/) });
    client.ws.close();
  });

  it("POST /api/run answers a kernel run with the build, the serial console as run.stdout and the outcome", async () => {
    const res = await post({ language: "kernel", kernel: "osbe", files: [{ name: "src/hello.rs", content: hello("over HTTP") }] });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.compile).toMatchObject({ ok: true, diagnostics: [] });
    expect(body.toolchain.name).toBe("cargo");
    expect(body.run).toMatchObject({ exitCode: 33, limit: null, message: "kernel exited: success" });
    expect(body.run.stdout.split("\n")[0]).toBe("over HTTP");
  });

  it("POST /api/run reports a kernel compile error on the replaced file's line", async () => {
    const source = "pub fn hello() {\n    let x: u32 = \"not a number\";\n}\n";
    const res = await post({ language: "kernel", kernel: "osbe", files: [{ name: "src/hello.rs", content: source }] });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.run).toBeNull();
    expect(body.compile.ok).toBe(false);
    expect(body.compile.diagnostics).toContainEqual(expect.objectContaining({ file: "src/hello.rs", line: 2, severity: "error" }));
  });

  it("POST /api/run refuses kernel requests it cannot run with 400 and says why", async () => {
    for (const [body, pattern] of [
      [{ language: "kernel", kernel: "osbe", files: [{ name: "src/main.rs", content: "" }] }, /"src\/main.rs" is not a replaceable file \(allowed: src\/hello\.rs, src\/syscall\.rs, src\/scheduler\.rs, src\/tasks\.rs\)/],
      [{ language: "kernel", kernel: "osbe", code: "fn main() {}" }, /not 'code'/],
      [{ language: "kernel", kernel: "nope" }, /unknown kernel "nope"/],
      [{ language: "kernel", kernel: "osbe", files: [{ name: "../x.rs", content: "" }] }, /\.\./],
      [{ language: "kernel", kernel: "osbe", stdin: "" }, /stdin|unrecognized/i],
    ] as const) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json()).error).toMatch(pattern);
    }
  });

  it("GET /api/health lists the kernels and their lesson files", async () => {
    const body = await (await fetch(`http://${base}/api/health`)).json();
    const osbe = body.kernels.find((k: { name: string }) => k.name === "osbe");
    expect(osbe).toMatchObject({ available: true });
    expect(osbe.replaceableFiles.map((f: { path: string }) => f.path)).toContain("src/scheduler.rs");
  });
});

describe("per-client bounds on the wire", () => {
  it("refuses a second connection, a run over the connection's bound, and runs over the rate", async () => {
    const limiter = createClientLimiter({ maxConnectionsPerClient: 1, runsPerMinute: 1, runBurst: 2 });
    const api = createRunApi(engine, limiter);
    const socket = createRunSocket(engine, limiter, { maxRunsPerConnection: 1 });
    const bounded = http.createServer((req, res) => void api(req, res));
    bounded.on("upgrade", (req, s, head) => {
      if (!socket.handleUpgrade(req, s, head)) s.destroy();
    });
    await new Promise<void>((resolve) => bounded.listen(0, "127.0.0.1", resolve));
    const port = (bounded.address() as AddressInfo).port;
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const messages: ServerMessage[] = [];
      ws.on("message", (d) => messages.push(JSON.parse(d.toString())));
      await new Promise((resolve) => ws.once("open", resolve));

      // A second connection from the same address is accepted and closed at once with the
      // refused code and the reason in words (a browser cannot read a 429 upgrade answer).
      const second = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const [code, reason] = await new Promise<[number, string]>((resolve) => second.once("close", (c, r) => resolve([c, r.toString()])));
      expect(code).toBe(WS_CLOSE.refused);
      expect(reason).toMatch(/too many open connections from your address \(at most 1\)/);

      const spin = { language: "c", files: [{ name: "main.c", content: "int main(void){for(;;){}}\n" }] };
      ws.send(JSON.stringify({ type: "run", id: "one", ...spin }));
      ws.send(JSON.stringify({ type: "run", id: "two", ...spin }));
      const until = async (p: () => boolean) => {
        for (let i = 0; i < 200 && !p(); i++) await new Promise((r) => setTimeout(r, 50));
      };
      await until(() => messages.some((m) => m.type === "protocol-error"));
      expect(messages.find((m) => m.type === "protocol-error")).toMatchObject({
        id: "two",
        message: expect.stringMatching(/too many runs on this connection \(at most 1 at once\)/),
      });
      ws.send(JSON.stringify({ type: "kill", id: "one" }));
      await until(() => messages.some((m) => "id" in m && m.id === "one" && (m.type === "exit" || m.type === "error")));
      ws.close();

      // The burst is two: run "one" took a token (the refused "two" did not), so one HTTP run is
      // left and the next is over the rate.
      const post = () =>
        fetch(`http://127.0.0.1:${port}/api/run`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ language: "c", code: HELLO_C }) });
      expect((await post()).status).toBe(200);
      const limited = await post();
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      expect((await limited.json()).error).toMatch(/too many runs/);
    } finally {
      await socket.close();
      await new Promise((resolve) => bounded.close(resolve));
    }
  });
});
