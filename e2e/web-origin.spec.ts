/**
 * Issue 16, finding 5, against the real server: pages of other sites can neither open /ws nor
 * send runs or sign-ins; POST /api/run takes JSON only; requests without an Origin (curl, scripts,
 * the benches) and the site's own pages, also behind a proxy (X-Forwarded-Host), still work.
 * playwright.config.ts lists https://mirror.example in ALLOWED_ORIGINS.
 */
import { expect, test } from "@playwright/test";
import http from "node:http";
import WebSocket from "ws";

const HELLO = '#include <stdio.h>\nint main(void){puts("hello, own origin");}\n';

interface Answer {
  status: number;
  body: string;
}

/** A request with exactly these headers (fetch would add an Origin of its own or refuse to set one). */
function request(baseURL: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const url = new URL(path, baseURL);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens /ws with these headers: "open" (then closed again) or the HTTP status it was refused with. */
function openSocket(baseURL: string, headers: Record<string, string>): Promise<{ opened: boolean; status?: number; reply?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${baseURL.replace(/^http/, "ws")}/ws`, { headers });
    ws.once("open", () => {
      // A message the server must answer: it is really serving this socket.
      ws.send(JSON.stringify({ type: "kill", id: "nothing-running" }));
    });
    ws.once("message", (data) => {
      ws.close();
      resolve({ opened: true, reply: data.toString() });
    });
    ws.once("unexpected-response", (_req, res) => {
      res.resume();
      resolve({ opened: false, status: res.statusCode });
      ws.terminate();
    });
    ws.once("error", (err) => reject(err));
  });
}

const json = { "Content-Type": "application/json" };
const bodyOf = (code: string) => JSON.stringify({ language: "c", code });

test.describe("origin checks (issue 16, finding 5)", () => {
  test("a page of another site cannot open /ws; the site's own pages, an allowed origin and scripts can", async ({ baseURL }) => {
    const own = new URL(baseURL!).origin;
    const evil = await openSocket(baseURL!, { Origin: "https://evil.example" });
    expect(evil).toEqual({ opened: false, status: 403 });
    // A sandboxed frame, a file or an SVG opened directly (CSP sandbox) has the origin "null".
    expect(await openSocket(baseURL!, { Origin: "null" })).toEqual({ opened: false, status: 403 });
    // Same host name, other port: another origin.
    expect((await openSocket(baseURL!, { Origin: "http://127.0.0.1:1" })).status).toBe(403);

    const allowed: Record<string, string>[] = [
      { Origin: own },
      {},
      { Origin: "https://mirror.example" },
      // Behind a proxy that passes the name the browser used as X-Forwarded-Host.
      { Origin: "https://course.example", "X-Forwarded-Host": "course.example" },
    ];
    for (const headers of allowed) {
      const result = await openSocket(baseURL!, headers);
      expect(result.opened, JSON.stringify(headers)).toBe(true);
      expect(JSON.parse(result.reply!)).toMatchObject({ type: "protocol-error", id: "nothing-running" });
    }
  });

  test("POST /api/run: other sites' pages get 403, non-JSON bodies 415; own pages and curl run", async ({ baseURL }) => {
    test.setTimeout(120_000);
    const own = new URL(baseURL!).origin;
    // What another site's page can send without a CORS preflight: a form, text/plain.
    const foreign = await request(baseURL!, "POST", "/api/run", { ...json, Origin: "https://evil.example" }, bodyOf(HELLO));
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).error).toMatch(/other sites/);
    const text = await request(baseURL!, "POST", "/api/run", { "Content-Type": "text/plain" }, bodyOf(HELLO));
    expect(text.status).toBe(415);
    expect(JSON.parse(text.body).error).toMatch(/application\/json/);
    const form = await request(baseURL!, "POST", "/api/run", { "Content-Type": "application/x-www-form-urlencoded" }, `x=${encodeURIComponent(bodyOf(HELLO))}`);
    expect(form.status).toBe(415);
    const none = await request(baseURL!, "POST", "/api/run", {}, bodyOf(HELLO));
    expect(none.status).toBe(415);

    // The site's own page (with a charset parameter, as browsers may send) runs the program.
    const ownPage = await request(baseURL!, "POST", "/api/run", { "Content-Type": "application/json; charset=utf-8", Origin: own }, bodyOf(HELLO));
    expect(ownPage.status, ownPage.body).toBe(200);
    expect(JSON.parse(ownPage.body).run.stdout).toBe("hello, own origin\n");
    // curl and scripts send no Origin: the request reaches the API (here a malformed one, told why).
    const curl = await request(baseURL!, "POST", "/api/run", json, JSON.stringify({ language: "cobol", code: "" }));
    expect(curl.status).toBe(400);
    const mirror = await request(baseURL!, "POST", "/api/run", { ...json, Origin: "https://mirror.example" }, JSON.stringify({ language: "cobol" }));
    expect(mirror.status).toBe(400);
  });

  test("the lecturer's sign-in refuses other sites' pages and takes the site's own behind a proxy", async ({ baseURL }) => {
    const body = JSON.stringify({ token: "not-the-token" });
    const foreign = await request(baseURL!, "POST", "/api/lecturer/sign-in", { ...json, Origin: "https://evil.example" }, body);
    expect(foreign.status).toBe(403);
    const nullOrigin = await request(baseURL!, "POST", "/api/lecturer/sign-out", { Origin: "null" });
    expect(nullOrigin.status).toBe(403);
    // Behind a proxy: the name the browser used comes as X-Forwarded-Host, and it is our own.
    const proxied = await request(baseURL!, "POST", "/api/lecturer/sign-out", { Origin: "https://course.example", "X-Forwarded-Host": "course.example" });
    expect(proxied.status).toBe(200);
    // Reading is allowed to anyone (a page of another site cannot read the answer).
    const me = await request(baseURL!, "GET", "/api/lecturer/me", { Origin: "https://evil.example" });
    expect(me.status).toBe(200);
  });
});
