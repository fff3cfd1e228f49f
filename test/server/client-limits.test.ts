import { describe, expect, it } from "vitest";
import { createClientLimiter } from "../../server/client-limits";

describe("client limits", () => {
  it("bounds connections per address and frees them on close", () => {
    const limiter = createClientLimiter({ maxConnectionsPerClient: 2 });
    const a = limiter.openConnection("1.1.1.1");
    limiter.openConnection("1.1.1.1");
    expect(limiter.connectionRefusal("1.1.1.1")).toMatch(/too many connections/);
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
});
