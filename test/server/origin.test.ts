/**
 * The origin policy (server/origin.ts): which pages may use /ws and the requests that act, and
 * the operator's ALLOWED_ORIGINS, which stops the real server with a clear message when wrong.
 * The server's answers to such requests are checked in e2e/web-origin.spec.ts.
 */
import { spawn } from "node:child_process";
import type http from "node:http";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createOriginPolicy, readAllowedOrigins } from "../../server/origin";

const ROOT = path.resolve(import.meta.dirname, "../..");

const req = (headers: Record<string, string>) => ({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) }) as http.IncomingMessage;

describe("origin policy", () => {
  const policy = createOriginPolicy(readAllowedOrigins({ ALLOWED_ORIGINS: "https://Mirror.example, http://localhost:8080/" }));

  it("lets requests without Origin and the site's own pages through", () => {
    expect(policy.refusal(req({ Host: "course.example" }))).toBeNull();
    expect(policy.refusal(req({ Host: "course.example", Origin: "https://course.example" }))).toBeNull();
    expect(policy.refusal(req({ Host: "course.example:443", Origin: "https://course.example" }))).toBeNull();
    expect(policy.refusal(req({ Host: "127.0.0.1:3000", Origin: "http://127.0.0.1:3000" }))).toBeNull();
    // A proxy that rewrote Host passes the browser's name on.
    expect(policy.refusal(req({ Host: "app1:3000", "X-Forwarded-Host": "course.example", Origin: "https://course.example" }))).toBeNull();
  });

  it("lets the operator's origins through, written in any case, with or without a trailing slash", () => {
    expect(policy.allowed).toEqual(["https://mirror.example", "http://localhost:8080"]);
    expect(policy.refusal(req({ Host: "course.example", Origin: "https://mirror.example" }))).toBeNull();
    expect(policy.refusal(req({ Host: "course.example", Origin: "http://localhost:8080" }))).toBeNull();
  });

  it("refuses other sites, other ports, other schemes' default ports and pages without an origin", () => {
    for (const origin of ["https://evil.example", "http://course.example:8443", "null", "file://", "chrome-extension://abc", "not a url", "https://mirror.example.evil.example"]) {
      expect(policy.refusal(req({ Host: "course.example", Origin: origin })), origin).toMatch(/refused/);
    }
    expect(policy.refusal(req({ Host: "course.example", Origin: "https://course.example.evil.example" }))).toMatch(/other sites/);
    expect(policy.refusal(req({ Host: "course.example", Origin: "http://localhost:8081" }))).toMatch(/ALLOWED_ORIGINS/);
  });

  it("reads ALLOWED_ORIGINS or says what is wrong with it", () => {
    expect(readAllowedOrigins({})).toEqual([]);
    expect(readAllowedOrigins({ ALLOWED_ORIGINS: " " })).toEqual([]);
    for (const bad of ["course.example", "https://course.example/path", "ftp://course.example", "https://course.example?x=1", "*"]) {
      expect(() => readAllowedOrigins({ ALLOWED_ORIGINS: bad }), bad).toThrow(/ALLOWED_ORIGINS: '.*' is not an origin/);
    }
  });

  it("a wrong ALLOWED_ORIGINS stops the real server at start with the message", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "server/index.ts"], {
      cwd: ROOT,
      env: { ...process.env, PORT: "4690", HOST: "127.0.0.1", NODE_ENV: "production", ALLOWED_ORIGINS: "course.example", PREWARM: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output).toContain("OSByExample cannot start: ALLOWED_ORIGINS: 'course.example' is not an origin");
  }, 90_000);
});
