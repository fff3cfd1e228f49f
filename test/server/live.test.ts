/**
 * Live lectures on the real server (HTTP sign-in, WebSocket rooms, the real engine for mirrored
 * runs), with the in-memory store: sign-in and its slowed-down wrong tries, revocation on sign-out,
 * refused student control, following, late joiners, mirrored code and output, counts, idle end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LiveServerMessage } from "../../lib/protocol";
import { createEngine } from "../../sandbox";
import type { Engine } from "../../sandbox/api";
import { createMemoryLecturerStore, createMemoryLiveStore } from "../../server/live/memory-store";
import { connect, signIn, startInstance, type Instance } from "./live-harness";

const DECK = "01-sample";
const HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello from the lecturer\\n"); return 0; }\n';
const is =
  <K extends LiveServerMessage["type"]>(type: K, where: (m: Extract<LiveServerMessage, { type: K }>) => boolean = () => true) =>
  (m: { type: string }): m is Extract<LiveServerMessage, { type: K }> =>
    m.type === type && where(m as Extract<LiveServerMessage, { type: K }>);

let engine: Engine;
let app: Instance;

beforeAll(async () => {
  engine = createEngine();
  app = await startInstance(engine, { live: createMemoryLiveStore({ idleMs: 60_000 }), lecturer: createMemoryLecturerStore() });
});
afterAll(async () => {
  await app?.stop();
  await engine.shutdown();
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
    expect(String(tooSoon.body.error)).toMatch(/too many wrong tries.*try again in \d+ s/);
    expect(Number(tooSoon.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(app.logs.some((l) => l.event === "lecturer-sign-in-refused")).toBe(true);

    await new Promise((r) => setTimeout(r, 1100));
    const wrongAgain = await signIn(app.base, "still wrong");
    expect(wrongAgain.status).toBe(401);
    // Two wrong tries: the wait doubles.
    const waitNow = await signIn(app.base);
    expect(waitNow.status).toBe(429);
    expect(Number(waitNow.retryAfter)).toBe(2);
    await new Promise((r) => setTimeout(r, 2100));

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
    const idle = await startInstance(engine, { live: createMemoryLiveStore({ idleMs: 1500 }), lecturer: createMemoryLecturerStore() }, 1500);
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
