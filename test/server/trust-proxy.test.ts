/**
 * TRUST_PROXY: which X-Forwarded-For entry is the client, for hops and for a list of proxies,
 * with forged entries; settings that are not valid; IPv6 clients keyed by /64. (The real server
 * with forged entries: e2e/web-hardening.spec.ts.)
 */
import type http from "node:http";
import { describe, expect, it } from "vitest";
import { clientAddress, clientIp, fromTrustedProxy, ipv6Prefix64, normalizeAddress, parseTrustProxy } from "../../server/trust-proxy";
import { readWebLimits } from "../../server/web-limits";

const request = (remoteAddress: string, forwardedFor?: string | string[]) =>
  ({ socket: { remoteAddress }, headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor } }) as unknown as http.IncomingMessage;

describe("TRUST_PROXY", () => {
  it("is off unless set: the connection's address, whatever the header says", () => {
    for (const value of [undefined, "", "0", "false", "FALSE"]) {
      const setting = parseTrustProxy(value);
      expect(setting.kind).toBe("off");
      expect(clientIp(request("203.0.113.9", "10.0.0.1"), setting)).toBe("203.0.113.9");
      expect(fromTrustedProxy(request("203.0.113.9"), setting)).toBe(false);
    }
  });

  it("with n hops takes the n-th entry from the right, never what the client wrote before it", () => {
    const one = parseTrustProxy("1");
    // The proxy (10.0.0.2) appended the address it saw; "1.2.3.4" is the client's own word.
    expect(clientIp(request("10.0.0.2", "198.51.100.7"), one)).toBe("198.51.100.7");
    expect(clientIp(request("10.0.0.2", "1.2.3.4, 198.51.100.7"), one)).toBe("198.51.100.7");
    expect(clientIp(request("10.0.0.2", "1.2.3.4, 5.6.7.8,198.51.100.7"), one)).toBe("198.51.100.7");
    // Two headers are one list.
    expect(clientIp(request("10.0.0.2", ["1.2.3.4", "198.51.100.7"]), one)).toBe("198.51.100.7");
    const two = parseTrustProxy("2");
    expect(clientIp(request("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.1"), two)).toBe("198.51.100.7");
    // Fewer entries than hops: the leftmost there is; none: the connection.
    expect(clientIp(request("10.0.0.2", "198.51.100.7"), two)).toBe("198.51.100.7");
    expect(clientIp(request("10.0.0.2"), two)).toBe("10.0.0.2");
    expect(fromTrustedProxy(request("10.0.0.2"), one)).toBe(true);
  });

  it("with a list of proxies walks from the connection past them to the first address that is not one", () => {
    const proxies = parseTrustProxy("10.0.0.0/8, 192.168.1.5, loopback");
    expect(clientIp(request("10.0.0.2", "1.2.3.4, 198.51.100.7, 192.168.1.5"), proxies)).toBe("198.51.100.7");
    expect(clientIp(request("127.0.0.1", "1.2.3.4, 198.51.100.7"), proxies)).toBe("198.51.100.7");
    expect(clientIp(request("::ffff:10.1.2.3", "198.51.100.7"), proxies)).toBe("198.51.100.7");
    // A connection that is not from a listed proxy: its header is the client's own word.
    expect(clientIp(request("203.0.113.9", "198.51.100.7"), proxies)).toBe("203.0.113.9");
    expect(fromTrustedProxy(request("203.0.113.9"), proxies)).toBe(false);
    expect(fromTrustedProxy(request("10.9.9.9"), proxies)).toBe(true);
    // IPv6 proxies and ranges.
    const v6 = parseTrustProxy("2001:db8::/32");
    expect(clientIp(request("2001:db8::1", "2001:db8:ffff::1, 2a00:1450::7"), v6)).toBe("2a00:1450::7");
  });

  it("ends at the last address a trusted party wrote when an entry is no address", () => {
    const one = parseTrustProxy("1");
    expect(clientIp(request("10.0.0.2", "not-an-address"), one)).toBe("10.0.0.2");
    expect(clientIp(request("10.0.0.2", "[2001:db8::5]:4711"), one)).toBe("2001:db8::5");
    expect(clientIp(request("10.0.0.2", "198.51.100.7:4711"), one)).toBe("198.51.100.7");
  });

  it("refuses what is not a valid setting, saying what is", () => {
    for (const value of ["true", "yes", "10.0.0.300", "10.0.0.0/33", "::1/129", "proxy.example", "1.2.3.4/8/9", "-1", "1.5", "99"]) {
      expect(() => parseTrustProxy(value), value).toThrow(/TRUST_PROXY.*number of proxies/);
    }
    expect(() => parseTrustProxy("true")).toThrow(/any client choose its own address/);
  });
});

describe("client keys", () => {
  it("keys an IPv6 client by its /64 and an IPv4 client by its address", () => {
    expect(ipv6Prefix64("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(ipv6Prefix64("2001:DB8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(ipv6Prefix64("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(ipv6Prefix64("::1")).toBe("0:0:0:0::/64");
    expect(ipv6Prefix64("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(ipv6Prefix64("64:ff9b::192.0.2.33")).toBe("64:ff9b:0:0::/64");
    expect(ipv6Prefix64("1:2:3:4:5:6:7:8")).toBe("1:2:3:4::/64");
    expect(clientAddress(request("2001:db8:1:2::abcd"))).toBe("2001:db8:1:2::/64");
    expect(clientAddress(request("::ffff:192.0.2.1"))).toBe("192.0.2.1");
    expect(normalizeAddress("nonsense")).toBeNull();
  });
});

describe("WEB_LIMITS", () => {
  it("has defaults in seconds and takes overrides; a bad value stops with its name", () => {
    expect(readWebLimits({})).toMatchObject({ headersTimeoutSeconds: 10, requestTimeoutSeconds: 30, idleTimeoutSeconds: 30 });
    expect(readWebLimits({ WEB_LIMITS: '{"idleTimeoutSeconds":5}' }).idleTimeoutSeconds).toBe(5);
    expect(() => readWebLimits({ WEB_LIMITS: '{"idleTimeout":5}' })).toThrow(/WEB_LIMITS/);
    expect(() => readWebLimits({ WEB_LIMITS: '{"headersTimeoutSeconds":-1}' })).toThrow(/headersTimeoutSeconds/);
    expect(() => readWebLimits({ WEB_LIMITS: '{"headersTimeoutSeconds":40}' })).toThrow(/requestTimeoutSeconds/);
    expect(() => readWebLimits({ WEB_LIMITS: "{" })).toThrow(/not valid JSON/);
  });
});
