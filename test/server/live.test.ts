/**
 * Live lectures on the real server (HTTP sign-in, WebSocket rooms, the real engine for mirrored
 * runs), once with the in-memory store and once with a real redis-server: sign-in and its
 * slowed-down wrong tries, revocation on sign-out, refused student control, following, late
 * joiners, mirrored code and output, counts, idle end. Then two instances sharing one Redis.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveServerMessage } from "../../lib/protocol";
import { osbeProfile } from "../../sandbox/kernels/profile";
import type { Engine } from "../../sandbox/api";
import { createLiveStores, type LiveStores } from "../../server/live";
import { closeRedis, connectRedis, type Redis } from "../../server/redis";
import { startRedisServer, type RedisServer } from "../helpers/redis-server";
import { connect, signIn, startInstance, type Instance } from "./live-harness";
import { startTestEngine, type TestEngine } from "../sandbox/helpers";

const DECK = "01-sample";
const HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello from the lecturer\\n"); return 0; }\n';
const REDIS_PORT = 6410;
// Over HTTP a wrong try holds the next one back for 4 s: room enough for a loaded machine to
// send the next request within the wait. The doubling itself is checked with explicit times.
const SLOW_TRIES = { baseMs: 4000, maxMs: 60_000 };
const is =
  <K extends LiveServerMessage["type"]>(type: K, where: (m: Extract<LiveServerMessage, { type: K }>) => boolean = () => true) =>
  (m: { type: string }): m is Extract<LiveServerMessage, { type: K }> =>
    m.type === type && where(m as Extract<LiveServerMessage, { type: K }>);

let t: TestEngine;
let engine: Engine;
let redisServer: RedisServer;
const connections: Redis[] = [];

beforeAll(async () => {
  t = startTestEngine(254_000);
  engine = t.engine;
  redisServer = await startRedisServer(REDIS_PORT);
});
afterAll(async () => {
  for (const c of connections) await closeRedis(c);
  await redisServer?.stop();
  await t?.dispose();
});

/** Fresh stores of a kind; Redis ones each on their own connection, as separate instances have. */
async function storesOf(kind: "memory" | "redis", idleMs: number, tryDelays = SLOW_TRIES): Promise<LiveStores> {
  const settings = { idleMs, signInTtlMs: 3600_000, tryDelays };
  if (kind === "memory") return createLiveStores(null, settings);
  const redis = await connectRedis(redisServer.url);
  connections.push(redis);
  return createLiveStores(redis, settings);
}

async function flushRedis(): Promise<void> {
  const redis = await connectRedis(redisServer.url);
  await redis.flushall();
  await closeRedis(redis);
}

describe.each(["memory", "redis"] as const)("with the %s store", (kind) => {
let app: Instance;

beforeAll(async () => {
  await flushRedis();
  app = await startInstance(engine, await storesOf(kind, 60_000));
});
afterAll(async () => {
  await app?.stop();
});

describe("lecturer sign-in", () => {
  it("refuses a wrong token in words, slows the next try down, then signs in with an HttpOnly SameSite cookie", async () => {
    const wrong = await signIn(app.base, "not the token");
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("wrong lecturer token");
    expect(wrong.setCookie).toBeNull();
    // Right away again, even with the right token: wait first.
    const tooSoon = await signIn(app.base);
    expect(tooSoon.status).toBe(429);
    expect(String(tooSoon.body.error)).toMatch(/too many wrong tries from your address: try again in \d+ s/);
    const wait = Number(tooSoon.retryAfter);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(4);
    expect(app.logs.some((l) => l.event === "lecturer-sign-in-refused")).toBe(true);
    expect(app.logs.some((l) => l.event === "lecturer-sign-in-throttled")).toBe(true);
    await new Promise((r) => setTimeout(r, wait * 1000 + 200));

    const ok = await signIn(app.base);
    expect(ok.status).toBe(200);
    expect(ok.setCookie).toMatch(/^osbe_lecturer=[\w-]{40,};/);
    expect(ok.setCookie).toMatch(/HttpOnly/);
    expect(ok.setCookie).toMatch(/SameSite=Strict/);
    const me = await fetch(`http://${app.base}/api/lecturer/me`, { headers: { cookie: ok.cookie! } });
    expect(await me.json()).toEqual({ signedIn: true });
    // A success forgets the wrong tries.
    expect((await signIn(app.base)).status).toBe(200);
  });

  it("doubles the wait with each wrong try, holds back tries made while one is checked, forgets after a success", async () => {
    const stores = await storesOf(kind, 60_000, { baseMs: 1000, maxMs: 300_000 });
    await stores.live.close();
    const store = stores.lecturer;
    const t = 1_000_000;
    expect(await store.beginTry("c", t)).toBe(0);
    // A second try while the first is being checked waits as if the first failed.
    expect(await store.beginTry("c", t + 10)).toBe(990);
    await store.endTry("c", false, t + 20);
    expect(await store.beginTry("c", t + 520)).toBe(500);
    expect(await store.beginTry("c", t + 1020)).toBe(0);
    await store.endTry("c", false, t + 1020);
    expect(await store.beginTry("c", t + 1020)).toBe(2000);
    expect(await store.beginTry("c", t + 3020)).toBe(0);
    await store.endTry("c", false, t + 3020);
    expect(await store.beginTry("c", t + 3020)).toBe(4000);
    // Another address is not affected.
    expect(await store.beginTry("d", t + 3020)).toBe(0);
    await store.endTry("d", true, t + 3020);
    // Many wrong tries: the wait stops at the cap.
    let now = t + 7020;
    for (let i = 0; i < 12; i++) {
      now += 300_000;
      expect(await store.beginTry("c", now)).toBe(0);
      await store.endTry("c", false, now);
    }
    expect(await store.beginTry("c", now)).toBe(300_000);
    expect(await store.beginTry("c", now + 300_000)).toBe(0);
    await store.endTry("c", true, now + 300_000);
    expect(await store.beginTry("c", now + 300_000)).toBe(0);
  });

  it("sign-out revokes the cookie on the server: the same cookie no longer controls anything", async () => {
    const { cookie } = await signIn(app.base);
    const lecturer = await connect(app.base, cookie!);
    lecturer.send({ type: "live-join", deck: DECK });
    await lecturer.waitFor(is("live-state", (m) => m.role === "lecturer"));
    const out = await fetch(`http://${app.base}/api/lecturer/sign-out`, { method: "POST", headers: { cookie: cookie! } });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    // Someone who kept the cookie value: refused over HTTP and over the socket already open.
    const me = await fetch(`http://${app.base}/api/lecturer/me`, { headers: { cookie: cookie! } });
    expect(await me.json()).toEqual({ signedIn: false });
    lecturer.send({ type: "live-start", deck: DECK });
    const refused = await lecturer.waitFor(is("live-refused"));
    expect(refused.message).toMatch(/only the signed-in lecturer/);
    await lecturer.close();
  });

  it("refuses a cross-site sign-in and a lecturer cookie on a cross-site socket", async () => {
    const res = await fetch(`http://${app.base}/api/lecturer/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example" },
      body: JSON.stringify({ token: "x" }),
    });
    expect(res.status).toBe(403);
    // A page on another site that opens our socket: the browser sends the cookie, we ignore it.
    const { cookie } = await signIn(app.base);
    const crossSite = await connect(app.base, cookie!, "https://evil.example");
    crossSite.send({ type: "live-join", deck: DECK });
    expect((await crossSite.waitFor(is("live-state"))).role).toBe("student");
    crossSite.send({ type: "live-start", deck: DECK });
    expect((await crossSite.waitFor(is("live-refused"))).message).toMatch(/only the signed-in lecturer/);
    await crossSite.close();
  });
});

describe("a live session", () => {
  it("students follow the lecturer's slide; a late joiner lands on it; a student's control is refused and logged", async () => {
    const { cookie } = await signIn(app.base);
    const lecturer = await connect(app.base, cookie!);
    const early = await connect(app.base);
    early.send({ type: "live-join", deck: DECK });
    const before = await early.waitFor(is("live-state"));
    expect(before).toMatchObject({ role: "student", session: null });

    lecturer.send({ type: "live-join", deck: DECK });
    await lecturer.waitFor(is("live-state"));
    lecturer.send({ type: "live-start", deck: DECK });
    const started = await early.waitFor(is("live-state", (m) => m.session !== null));
    expect(started.session).toMatchObject({ deck: DECK, slide: null });

    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 2, v: 0, f: -1 } });
    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 2, v: 0, f: 0 } });
    await early.waitFor(is("live-slide", (m) => m.slide.f === 0));
    expect(early.live().filter((m) => m.type === "live-slide").map((m) => (m as { slide: unknown }).slide)).toEqual([
      { h: 2, v: 0, f: -1 },
      { h: 2, v: 0, f: 0 },
    ]);

    const late = await connect(app.base);
    late.send({ type: "live-join", deck: DECK });
    const joined = await late.waitFor(is("live-state"));
    expect(joined.session?.slide).toEqual({ h: 2, v: 0, f: 0 });

    // The student tries to drive the room.
    const logsBefore = app.logs.length;
    late.send({ type: "live-slide", deck: DECK, slide: { h: 0, v: 0, f: -1 } });
    late.send({ type: "live-end", deck: DECK });
    late.send({ type: "live-code", deck: DECK, block: "hello", files: [{ name: "main.c", text: "evil", hidden: null }] });
    await late.waitUntil(() => late.live().filter((m) => m.type === "live-refused").length >= 3);
    expect(app.logs.slice(logsBefore).filter((l) => l.event === "live-control-refused").map((l) => l.type)).toEqual([
      "live-slide",
      "live-end",
      "live-code",
    ]);
    // Nothing reached the room: the slide is still the lecturer's.
    const check = await connect(app.base);
    check.send({ type: "live-join", deck: DECK });
    expect((await check.waitFor(is("live-state"))).session).toMatchObject({ slide: { h: 2, v: 0, f: 0 }, code: {} });
    expect(early.live().some((m) => m.type === "live-code" || m.type === "live-ended")).toBe(false);

    lecturer.send({ type: "live-end", deck: DECK });
    await early.waitFor(is("live-ended", (m) => m.reason === "ended"));
    await late.waitFor(is("live-ended"));
    for (const c of [lecturer, early, late, check]) await c.close();
  });

  it("mirrors the lecturer's code and the streamed output of the lecturer's run at its block; a student's tagged run is not mirrored", async () => {
    const { cookie } = await signIn(app.base);
    const lecturer = await connect(app.base, cookie!);
    const student = await connect(app.base);
    lecturer.send({ type: "live-start", deck: DECK });
    await lecturer.waitFor(is("live-state", (m) => m.session !== null));
    student.send({ type: "live-join", deck: DECK });
    await student.waitFor(is("live-state", (m) => m.session !== null));

    const files = [{ name: "main.c", text: HELLO_C, hidden: null }];
    lecturer.send({ type: "live-code", deck: DECK, block: "hello", files });
    expect((await student.waitFor(is("live-code"))).files).toEqual(files);

    lecturer.send({ type: "run", id: "r1", live: { deck: DECK, block: "hello" }, language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    const exit = await student.waitFor(is("live-run", (m) => m.event.type === "exit"), 60_000);
    expect(exit.block).toBe("hello");
    const runEvents = student.live().filter((m) => m.type === "live-run").map((m) => (m as Extract<LiveServerMessage, { type: "live-run" }>).event);
    expect(runEvents.map((e) => e.type)).toContain("compiling");
    expect(runEvents.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe("hello from the lecturer\n");
    expect(runEvents.some((e) => e.type === "stats")).toBe(false);

    // A late joiner gets the code and the run so far.
    const late = await connect(app.base);
    late.send({ type: "live-join", deck: DECK });
    const state = await late.waitFor(is("live-state"));
    expect(state.session?.code.hello).toEqual(files);
    expect(state.session?.runs.hello.events.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });

    // A student's run tagged live runs for the student only.
    const studentRuns = student.live().filter((m) => m.type === "live-run").length;
    student.send({ type: "run", id: "s1", live: { deck: DECK, block: "hello" }, language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    await student.waitFor((m): m is never => "id" in m && m.id === "s1" && m.type === "exit", 60_000);
    await student.waitFor(is("live-refused"));
    expect(student.live().filter((m) => m.type === "live-run").length).toBe(studentRuns);
    expect(app.logs.some((l) => l.event === "live-control-refused" && l.type === "run")).toBe(true);

    lecturer.send({ type: "live-end", deck: DECK });
    await student.waitFor(is("live-ended"));
    for (const c of [lecturer, student, late]) await c.close();
  });

  it("mirrors a kernel-lab block's serial console the same way", async () => {
    const { cookie } = await signIn(app.base);
    const lecturer = await connect(app.base, cookie!);
    const student = await connect(app.base);
    lecturer.send({ type: "live-start", deck: "kernel-lab" });
    await lecturer.waitFor(is("live-state", (m) => m.session !== null));
    student.send({ type: "live-join", deck: "kernel-lab" });
    await student.waitFor(is("live-state", (m) => m.session !== null));
    const hello = fs.readFileSync(path.join(osbeProfile().sourceDir, "src/hello.rs"), "utf8").replace("Hello from the OSByExample kernel!", "hello, lecture hall");
    lecturer.send({ type: "run", id: "k", live: { deck: "kernel-lab", block: "boot" }, language: "kernel", kernel: "osbe", files: [{ name: "src/hello.rs", content: hello }] });
    const exit = await student.waitFor(is("live-run", (m) => m.event.type === "exit"), 120_000);
    expect(exit.event).toMatchObject({ type: "exit", message: "kernel exited: success" });
    const serial = student
      .live()
      .filter((m): m is Extract<LiveServerMessage, { type: "live-run" }> => m.type === "live-run" && m.block === "boot")
      .map((m) => (m.event.type === "stdout" ? m.event.data : ""))
      .join("");
    expect(serial).toMatch(/^hello, lecture hall\n\[syscall\] int 0x80 is ready\n/);
    lecturer.send({ type: "live-end", deck: "kernel-lab" });
    await student.waitFor(is("live-ended"));
    await lecturer.close();
    await student.close();
  }, 180_000);

  it("tells the lecturer how many students follow and how many detached; the lecturer's reconnect keeps the session", async () => {
    const { cookie } = await signIn(app.base);
    let lecturer = await connect(app.base, cookie!);
    lecturer.send({ type: "live-start", deck: DECK });
    await lecturer.waitFor(is("live-state", (m) => m.session !== null && m.role === "lecturer"));
    const students = await Promise.all([connect(app.base), connect(app.base), connect(app.base)]);
    for (const s of students) s.send({ type: "live-join", deck: DECK });
    await lecturer.waitUntil(() => lecturer.last("live-counts")?.following === 3);
    students[0].send({ type: "live-status", deck: DECK, following: false });
    await lecturer.waitUntil(() => {
      const c = lecturer.last("live-counts");
      return c?.following === 2 && c.detached === 1;
    });
    await students[1].close();
    await lecturer.waitUntil(() => lecturer.last("live-counts")?.following === 1);

    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 3, v: 0, f: -1 } });
    await students[2].waitFor(is("live-slide"));
    // The lecturer's page reloads: a new connection, the same session on the same slide.
    const sessionId = lecturer.last("live-state")?.session?.id;
    await lecturer.close();
    lecturer = await connect(app.base, cookie!);
    lecturer.send({ type: "live-join", deck: DECK });
    const again = await lecturer.waitFor(is("live-state"));
    expect(again.session?.id).toBe(sessionId);
    expect(again.session?.slide).toEqual({ h: 3, v: 0, f: -1 });
    expect(again.role).toBe("lecturer");
    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 4, v: 0, f: -1 } });
    await students[2].waitFor(is("live-slide", (m) => m.slide.h === 4));

    lecturer.send({ type: "live-end", deck: DECK });
    await students[2].waitFor(is("live-ended"));
    for (const c of [lecturer, students[0], students[2]]) await c.close();
  });

  it("refuses to start on a deck that does not exist and answers malformed live messages", async () => {
    const { cookie } = await signIn(app.base);
    const lecturer = await connect(app.base, cookie!);
    lecturer.send({ type: "live-start", deck: "no-such-deck" });
    expect((await lecturer.waitFor(is("live-refused"))).message).toMatch(/no deck named 'no-such-deck'/);
    lecturer.send({ type: "live-slide", deck: "../etc", slide: { h: 0, v: 0, f: 0 } });
    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 0, v: 0, f: -1 } });
    await lecturer.waitUntil(() => lecturer.messages.some((m) => m.type === "protocol-error"));
    expect(JSON.stringify(lecturer.messages.find((m) => m.type === "protocol-error"))).toMatch(/not a deck name/);
    expect((await lecturer.waitFor(is("live-refused", (m) => m.deck === DECK))).message).toMatch(/no live session is running/);
    await lecturer.close();
  });
});

describe("idle sessions", () => {
  it("end by themselves after the idle timeout", async () => {
    const idle = await startInstance(engine, await storesOf(kind, 1500), 1500);
    try {
      const { cookie } = await signIn(idle.base);
      const lecturer = await connect(idle.base, cookie!);
      const student = await connect(idle.base);
      lecturer.send({ type: "live-start", deck: DECK });
      await lecturer.waitFor(is("live-state", (m) => m.session !== null));
      student.send({ type: "live-join", deck: DECK });
      await student.waitFor(is("live-state", (m) => m.session !== null));
      const ended = await student.waitFor(is("live-ended"), 30_000);
      expect(ended.reason).toBe("idle");
      await lecturer.close();
      await student.close();
    } finally {
      await idle.stop();
    }
  });
});
});

describe("two instances sharing one Redis", () => {
  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    await flushRedis();
    a = await startInstance(engine, await storesOf("redis", 60_000));
    b = await startInstance(engine, await storesOf("redis", 60_000));
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it("the lecturer on one and students on the other stay in step: slides, code, run output, late joiner, counts", async () => {
    // Signed in on A, the cookie counts on B too.
    const { cookie } = await signIn(a.base);
    const me = await fetch(`http://${b.base}/api/lecturer/me`, { headers: { cookie: cookie! } });
    expect(await me.json()).toEqual({ signedIn: true });

    const lecturer = await connect(a.base, cookie!);
    lecturer.send({ type: "live-start", deck: DECK });
    await lecturer.waitFor(is("live-state", (m) => m.session !== null));
    const onB = await connect(b.base);
    const onA = await connect(a.base);
    for (const s of [onB, onA]) s.send({ type: "live-join", deck: DECK });
    await onB.waitFor(is("live-state", (m) => m.session !== null));

    for (let h = 1; h <= 5; h++) lecturer.send({ type: "live-slide", deck: DECK, slide: { h, v: 0, f: -1 } });
    await onB.waitFor(is("live-slide", (m) => m.slide.h === 5));
    expect(onB.live().filter((m) => m.type === "live-slide").map((m) => (m as { slide: { h: number } }).slide.h)).toEqual([1, 2, 3, 4, 5]);

    const files = [{ name: "main.c", text: HELLO_C, hidden: null }];
    lecturer.send({ type: "live-code", deck: DECK, block: "hello", files });
    expect((await onB.waitFor(is("live-code"))).files).toEqual(files);
    lecturer.send({ type: "run", id: "r", live: { deck: DECK, block: "hello" }, language: "c", files: [{ name: "main.c", content: HELLO_C }] });
    await onB.waitFor(is("live-run", (m) => m.event.type === "exit"), 60_000);
    const stdout = onB
      .live()
      .filter((m): m is Extract<LiveServerMessage, { type: "live-run" }> => m.type === "live-run")
      .map((m) => (m.event.type === "stdout" ? m.event.data : ""))
      .join("");
    expect(stdout).toBe("hello from the lecturer\n");

    // A late joiner on B gets slide, code and output from Redis.
    const late = await connect(b.base);
    late.send({ type: "live-join", deck: DECK });
    const state = await late.waitFor(is("live-state"));
    expect(state.session).toMatchObject({ slide: { h: 5, v: 0, f: -1 }, code: { hello: files } });
    expect(state.session?.runs.hello.events.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe(
      "hello from the lecturer\n",
    );

    // Counts add up over both instances: three students, one of them detached.
    onB.send({ type: "live-status", deck: DECK, following: false });
    await lecturer.waitUntil(() => {
      const c = lecturer.last("live-counts");
      return c?.following === 2 && c.detached === 1;
    });

    // The lecturer continues from B (another device): same session, everyone follows.
    const fromB = await connect(b.base, cookie!);
    fromB.send({ type: "live-join", deck: DECK });
    expect((await fromB.waitFor(is("live-state"))).role).toBe("lecturer");
    fromB.send({ type: "live-slide", deck: DECK, slide: { h: 6, v: 0, f: -1 } });
    await onA.waitFor(is("live-slide", (m) => m.slide.h === 6));

    // Sign-out on B revokes the cookie on A.
    await fetch(`http://${b.base}/api/lecturer/sign-out`, { method: "POST", headers: { cookie: cookie! } });
    lecturer.send({ type: "live-slide", deck: DECK, slide: { h: 7, v: 0, f: -1 } });
    expect((await lecturer.waitFor(is("live-refused"))).message).toMatch(/only the signed-in lecturer/);

    const { cookie: again } = await signIn(b.base);
    const closer = await connect(a.base, again!);
    closer.send({ type: "live-end", deck: DECK });
    await onB.waitFor(is("live-ended", (m) => m.reason === "ended"));
    for (const c of [lecturer, onB, onA, late, fromB, closer]) await c.close();
  });

  it("wrong sign-in tries count over both instances", async () => {
    expect((await signIn(a.base, "wrong")).status).toBe(401);
    const onB = await signIn(b.base);
    expect(onB.status).toBe(429);
    expect(String(onB.body.error)).toMatch(/try again in/);
    await new Promise((r) => setTimeout(r, Number(onB.retryAfter) * 1000 + 200));
    expect((await signIn(b.base)).status).toBe(200);
  });
});
