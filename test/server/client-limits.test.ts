import { describe, expect, it } from "vitest";
import { createClientLimiter, defaultClientLimits, readClientLimits } from "../../server/client-limits";

describe("client limits", () => {
  it("bounds connections per address and frees them on close", () => {
    const limiter = createClientLimiter({ maxConnectionsPerClient: 2 });
    const a = limiter.openConnection("1.1.1.1");
    limiter.openConnection("1.1.1.1");
    expect(limiter.connectionRefusal("1.1.1.1")).toMatch(/too many open connections/);
    expect(limiter.connectionRefusal("2.2.2.2")).toBeNull();
    a();
    a(); // releasing twice counts once
    expect(limiter.connectionRefusal("1.1.1.1")).toBeNull();
  });

  it("allows a burst of runs, then refills at the set rate", () => {
    let t = 0;
    const limiter = createClientLimiter({ runsPerMinute: 60, runBurst: 3 }, () => t);
    expect([1, 2, 3].map(() => limiter.takeRun("a"))).toEqual([null, null, null]);
    expect(limiter.takeRun("a")).toMatch(/too many runs: at most 60 a minute; try again in 1 s/);
    expect(limiter.takeRun("b")).toBeNull();
    t += 1000;
    expect(limiter.takeRun("a")).toBeNull();
    expect(limiter.takeRun("a")).not.toBeNull();
  });

  it("reads CLIENT_LIMITS over defaults that fit a class behind one address, and names a bad setting", () => {
    // A class of a few hundred behind one NAT address must not be refused by default.
    expect(defaultClientLimits.maxConnectionsPerClient).toBeGreaterThanOrEqual(300);
    expect(defaultClientLimits.runBurst).toBeGreaterThanOrEqual(200);
    expect(readClientLimits({})).toEqual(defaultClientLimits);
    expect(readClientLimits({ CLIENT_LIMITS: '{"maxConnectionsPerClient":16,"runsPerMinute":120}' })).toEqual({
      ...defaultClientLimits,
      maxConnectionsPerClient: 16,
      runsPerMinute: 120,
    });
    expect(() => readClientLimits({ CLIENT_LIMITS: "{" })).toThrow(/CLIENT_LIMITS is not valid JSON/);
    expect(() => readClientLimits({ CLIENT_LIMITS: '{"connections":3}' })).toThrow(/CLIENT_LIMITS: .*connections/);
    expect(() => readClientLimits({ CLIENT_LIMITS: '{"runBurst":0}' })).toThrow(/CLIENT_LIMITS: runBurst/);
  });
});
