/**
 * Who the client is, when the server sits behind proxies it trusts (TRUST_PROXY).
 *
 * Each proxy appends the address it was connected from to `X-Forwarded-For`, so the list reads
 * "whatever the client wrote, …, what our proxies wrote", and only the entries our own proxies
 * wrote can be believed: read from the right, past the trusted hops. The leftmost entry is the
 * client's own word and is never taken as such.
 *
 *   TRUST_PROXY unset, "", "0" or "false"   no proxy: the connection's address is the client
 *   TRUST_PROXY=<n>                         n proxies in front (n = 1 for one nginx/haproxy/Ingress):
 *                                           the n-th entry from the right is the client
 *   TRUST_PROXY=<address or CIDR>,…         these are our proxies (also "loopback"): walking from the
 *                                           connection leftwards, the first address not among them
 *
 * Anything else stops the server with a message. An IPv6 client is keyed by its /64: one
 * subscriber holds the whole prefix and could otherwise take a fresh address per request.
 * (Written here rather than taken from proxy-addr: that is Express's, and the rules are these few lines.)
 */
import type http from "node:http";
import net from "node:net";

export type TrustProxy =
  | { kind: "off" }
  | { kind: "hops"; hops: number }
  | { kind: "addresses"; proxies: net.BlockList; text: string };

const HOW =
  "set TRUST_PROXY to the number of proxies in front of the server (e.g. 1), or to a comma-separated list of their addresses or CIDR ranges (e.g. 10.0.0.5,10.1.0.0/16, or loopback); leave it unset without a proxy";

/** Parses TRUST_PROXY; throws with what is wrong and what is accepted. */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const text = (value ?? "").trim();
  if (text === "" || text === "0" || text.toLowerCase() === "false") return { kind: "off" };
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (!Number.isSafeInteger(hops) || hops > 32) throw new Error(`TRUST_PROXY=${text} is not a plausible number of proxies; ${HOW}`);
    return { kind: "hops", hops };
  }
  const proxies = new net.BlockList();
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry.toLowerCase() === "loopback") {
      proxies.addSubnet("127.0.0.0", 8, "ipv4");
      proxies.addAddress("::1", "ipv6");
      continue;
    }
    const [address, prefix, extra] = entry.split("/");
    const family = net.isIP(address ?? "");
    if (family === 0 || extra !== undefined) {
      const hint = /^(true|yes|on)$/i.test(entry) ? " (trusting every hop would let any client choose its own address)" : "";
      throw new Error(`TRUST_PROXY: "${entry}" is neither a number of proxies nor an IP address or CIDR range${hint}; ${HOW}`);
    }
    const type = family === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) {
      proxies.addAddress(address!, type);
      continue;
    }
    const bits = /^\d+$/.test(prefix) ? Number(prefix) : Number.NaN;
    if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) throw new Error(`TRUST_PROXY: "${entry}" has no valid prefix length; ${HOW}`);
    proxies.addSubnet(address!, bits, type);
  }
  return { kind: "addresses", proxies, text };
}

let cached: { raw: string | undefined; setting: TrustProxy } | null = null;

/** TRUST_PROXY from the environment, parsed once per value (tests change it between cases). */
export function trustProxyFromEnv(env: NodeJS.ProcessEnv = process.env): TrustProxy {
  const raw = env.TRUST_PROXY;
  if (!cached || cached.raw !== raw) cached = { raw, setting: parseTrustProxy(raw) };
  return cached.setting;
}

/** An address as written by a socket or a proxy, without port, brackets or IPv4-in-IPv6 wrapping; null if it is none. */
export function normalizeAddress(text: string | undefined): string | null {
  if (!text) return null;
  let address = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(":"));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) address = mapped[1]!;
  return net.isIP(address) === 0 ? null : address;
}

/**
 * The client's address: the connection's own, or the right `X-Forwarded-For` entry when the
 * connection comes from trusted proxies. An entry that is no address ends the walk at the last
 * address a trusted party wrote.
 */
export function clientIp(req: http.IncomingMessage, setting: TrustProxy = trustProxyFromEnv()): string {
  const remote = normalizeAddress(req.socket.remoteAddress) ?? req.socket.remoteAddress ?? "unknown";
  if (setting.kind === "off") return remote;
  const header = req.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  // The connection first, then the entries from right to left: the order in which hops are trusted.
  const chain = [remote, ...forwarded.reverse()];
  let index = 0;
  if (setting.kind === "hops") index = Math.min(setting.hops, chain.length - 1);
  else while (index < chain.length - 1 && isTrustedProxy(setting, chain[index]!)) index++;
  for (let i = index; i > 0; i--) {
    const address = normalizeAddress(chain[i]);
    if (address) return address;
  }
  return remote;
}

function isTrustedProxy(setting: Extract<TrustProxy, { kind: "addresses" }>, text: string): boolean {
  const address = normalizeAddress(text);
  if (!address) return false;
  return setting.proxies.check(address, net.isIP(address) === 4 ? "ipv4" : "ipv6");
}

/** Whether the connection comes from a proxy we trust (so its X-Forwarded-* headers may be believed). */
export function fromTrustedProxy(req: http.IncomingMessage, setting: TrustProxy = trustProxyFromEnv()): boolean {
  if (setting.kind === "off") return false;
  if (setting.kind === "hops") return setting.hops > 0;
  return isTrustedProxy(setting, req.socket.remoteAddress ?? "");
}

/** The key per-client bounds count by: an IPv4 address as it is, an IPv6 address by its /64. */
export function clientKey(address: string): string {
  return net.isIPv6(address) ? ipv6Prefix64(address) : address;
}

/** "2001:db8:1:2::/64" for any address in that /64. */
export function ipv6Prefix64(address: string): string {
  let a = address.toLowerCase();
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) as two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, v4.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.includes("::") ? (a.split("::") as [string, string]) : [a, undefined];
  const first = head ? head.split(":") : [];
  const last = tail ? tail.split(":") : [];
  const groups = tail === undefined ? first : [...first, ...Array<string>(Math.max(0, 8 - first.length - last.length)).fill("0"), ...last];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || "0", 16).toString(16))
    .join(":")}::/64`;
}

/** Whom per-client bounds count: the client's address (its /64 for IPv6). */
export function clientAddress(req: http.IncomingMessage): string {
  return clientKey(clientIp(req));
}
