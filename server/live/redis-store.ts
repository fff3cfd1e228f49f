/**
 * Live sessions and lecturer sign-ins in Redis, so that every instance behind the proxy serves
 * the same lecture. The connection comes from server/redis.ts; pub/sub gets its own duplicate.
 *
 *   osbe:live:<deck>                   hash: sid, meta, seq, slide, showJoin, code:<block>, run:<block>
 *                                      (expires after the idle timeout unless changed again)
 *   osbe:live:<deck>:out:<sid>:<block> the lecturer's latest run at a block: one event (JSON) a line
 *   osbe:live:<deck>:counts            hash: instance → its followers, with the time they hold until
 *   osbe:live (channel)                every change, as LiveBusMessage JSON
 *   osbe:lecturer:session:<hash>       a signed-in lecturer's cookie (by hash), until it expires
 *   osbe:lecturer:tries:<client>       wrong sign-in tries of a client and when it may try again
 *   osbe:lecturer:token                the generated token instances agree on (no LECTURER_TOKEN)
 *
 * Each change runs as one Lua script that updates the record, bumps its sequence number and
 * publishes, so a late joiner's snapshot and the published changes never disagree on order.
 * (The output keys are derived inside the scripts: fine for one Redis, not for Redis Cluster.)
 */
import type { LiveSession, RunEvent } from "../../lib/protocol";
import { type Redis, redisKey } from "../redis";
import {
  DEFAULT_TRY_DELAYS,
  TRY_MEMORY_MS,
  type TryDelays,
  type FollowerCounts,
  type LecturerStore,
  type LiveBusMessage,
  type LiveStore,
  type StoredSession,
} from "./store";

const CHANNEL = redisKey("live");
const hashKey = (deck: string) => redisKey("live", deck);
const outPrefix = (deck: string) => `${redisKey("live", deck, "out")}:`;
const countsKey = (deck: string) => redisKey("live", deck, "counts");

// Publishes '{"deck":…,"sessionId":…,"seq":…,"change":…}' from parts (Lua has no JSON writer we need).
const PUBLISH = `
local function publish(channel, deckJson, sid, seq, changeJson)
  redis.call('PUBLISH', channel, '{"deck":' .. deckJson .. ',"sessionId":"' .. sid .. '","seq":' .. seq .. ',"change":' .. changeJson .. '}')
end
`;

/** KEYS[1] hash · ARGV idleMs, sid, meta, channel, deckJson, sessionJson → 1 started, 0 already running */
const START = `${PUBLISH}
if redis.call('HEXISTS', KEYS[1], 'sid') == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'sid', ARGV[2], 'meta', ARGV[3], 'seq', 1, 'showJoin', 'false')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
publish(ARGV[4], ARGV[5], ARGV[2], 1, '{"kind":"started","session":' .. ARGV[6] .. '}')
return 1
`;

/**
 * KEYS[1] hash · ARGV idleMs, kind, field, value, channel, deckJson, changeJson, outPrefix, runId
 * → the new sequence number, or 0 when no session runs. A run event with a new runId replaces the
 * block's earlier run; every change keeps the session's output keys alive as long as the session.
 */
const UPDATE = `${PUBLISH}
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if ARGV[2] == 'run' then
  local outKey = ARGV[8] .. sid .. ':' .. ARGV[3]
  if redis.call('HGET', KEYS[1], 'run:' .. ARGV[3]) ~= ARGV[9] then
    redis.call('HSET', KEYS[1], 'run:' .. ARGV[3], ARGV[9])
    redis.call('SET', outKey, ARGV[4] .. '\\n')
  else
    redis.call('APPEND', outKey, ARGV[4] .. '\\n')
  end
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 4) == 'run:' then redis.call('PEXPIRE', ARGV[8] .. sid .. ':' .. string.sub(field, 5), ARGV[1]) end
end
publish(ARGV[5], ARGV[6], sid, seq, ARGV[7])
return seq
`;

/** KEYS[1] hash · ARGV channel, deckJson, reasonJson, outPrefix → 1 ended, 0 none was running */
const END = `${PUBLISH}
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 4) == 'run:' then redis.call('DEL', ARGV[4] .. sid .. ':' .. string.sub(field, 5)) end
end
redis.call('DEL', KEYS[1])
publish(ARGV[1], ARGV[2], sid, seq, '{"kind":"ended","reason":' .. ARGV[3] .. '}')
return 1
`;

/** KEYS[1] hash · ARGV outPrefix → {hash fields and values, {block, output}…} in one consistent read */
const SNAPSHOT = `
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local sid = redis.call('HGET', KEYS[1], 'sid')
if not sid then return nil end
local outs = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 4) == 'run:' then
    local block = string.sub(fields[i], 5)
    table.insert(outs, block)
    table.insert(outs, redis.call('GET', ARGV[1] .. sid .. ':' .. block) or '')
  end
end
return {fields, outs}
`;

/** KEYS[1] tries · ARGV now, memoryMs, baseMs, maxMs → 0 go ahead, else ms to wait */
const BEGIN_TRY = `
local state = redis.call('HMGET', KEYS[1], 'failures', 'nextAt')
local failures = tonumber(state[1]) or 0
local nextAt = tonumber(state[2]) or 0
local now = tonumber(ARGV[1])
if now < nextAt then return nextAt - now end
local delay = math.min(tonumber(ARGV[3]) * 2 ^ failures, tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'failures', failures, 'nextAt', now + delay)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
`;

/** KEYS[1] tries · ARGV now, memoryMs, baseMs, maxMs: one more wrong try */
const FAIL_TRY = `
local failures = (tonumber(redis.call('HGET', KEYS[1], 'failures')) or 0) + 1
local delay = math.min(tonumber(ARGV[3]) * 2 ^ (failures - 1), tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'failures', failures, 'nextAt', tonumber(ARGV[1]) + delay)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return failures
`;

type Scripted = Redis & {
  osbeLiveStart(key: string, ...args: (string | number)[]): Promise<number>;
  osbeLiveUpdate(key: string, ...args: (string | number)[]): Promise<number>;
  osbeLiveEnd(key: string, ...args: (string | number)[]): Promise<number>;
  osbeLiveSnapshot(key: string, prefix: string): Promise<[string[], string[]] | null>;
  osbeLecturerBeginTry(key: string, ...args: (string | number)[]): Promise<number>;
  osbeLecturerFailTry(key: string, ...args: (string | number)[]): Promise<number>;
};

function scripted(redis: Redis): Scripted {
  const r = redis as Scripted;
  if (typeof r.osbeLiveStart !== "function") {
    redis.defineCommand("osbeLiveStart", { numberOfKeys: 1, lua: START });
    redis.defineCommand("osbeLiveUpdate", { numberOfKeys: 1, lua: UPDATE });
    redis.defineCommand("osbeLiveEnd", { numberOfKeys: 1, lua: END });
    redis.defineCommand("osbeLiveSnapshot", { numberOfKeys: 1, lua: SNAPSHOT });
    redis.defineCommand("osbeLecturerBeginTry", { numberOfKeys: 1, lua: BEGIN_TRY });
    redis.defineCommand("osbeLecturerFailTry", { numberOfKeys: 1, lua: FAIL_TRY });
  }
  return r;
}

function parseSnapshot(deck: string, raw: [string[], string[]]): StoredSession {
  const [flat, outs] = raw;
  const fields = new Map<string, string>();
  for (let i = 0; i < flat.length; i += 2) fields.set(flat[i], flat[i + 1]);
  const meta = JSON.parse(fields.get("meta") ?? "{}") as { startedAt: number };
  const session: LiveSession = {
    id: fields.get("sid")!,
    deck,
    startedAt: meta.startedAt,
    slide: fields.has("slide") ? JSON.parse(fields.get("slide")!) : null,
    showJoin: fields.get("showJoin") === "true",
    code: {},
    runs: {},
  };
  for (const [field, value] of fields) {
    if (field.startsWith("code:")) session.code[field.slice(5)] = JSON.parse(value);
  }
  for (let i = 0; i < outs.length; i += 2) {
    const block = outs[i];
    const events = outs[i + 1]
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RunEvent);
    session.runs[block] = { runId: fields.get(`run:${block}`)!, events };
  }
  return { session, seq: Number(fields.get("seq") ?? 0) };
}

export function createRedisLiveStore(redis: Redis, options: { idleMs: number }): LiveStore {
  const r = scripted(redis);
  const subscriber = redis.duplicate();
  // ioredis reconnects by itself; say once why it is trying, not on every attempt.
  let lastError = "";
  subscriber.on("error", (err: Error) => {
    if (err.message !== lastError) console.error(`redis (live sessions' subscription): ${err.message}`);
    lastError = err.message;
  });
  subscriber.on("ready", () => {
    lastError = "";
  });
  const listeners = new Set<(message: LiveBusMessage) => void>();
  const subscribed = subscriber.subscribe(CHANNEL);
  let closed = false;
  subscribed.catch((err) => {
    if (!closed) console.error(`redis: live sessions cannot subscribe: ${(err as Error).message}`);
  });
  subscriber.on("message", (_channel: string, text: string) => {
    let message: LiveBusMessage;
    try {
      message = JSON.parse(text) as LiveBusMessage;
    } catch {
      return;
    }
    for (const listener of listeners) listener(message);
  });

  const get = async (deck: string): Promise<StoredSession | null> => {
    const raw = await r.osbeLiveSnapshot(hashKey(deck), outPrefix(deck));
    return raw ? parseSnapshot(deck, raw) : null;
  };

  return {
    get,
    async sessionId(deck) {
      return redis.hget(hashKey(deck), "sid");
    },
    async start(deck, startedAt) {
      await subscribed;
      const id = crypto.randomUUID();
      const session: LiveSession = { id, deck, startedAt, slide: null, showJoin: false, code: {}, runs: {} };
      const created =
        (await r.osbeLiveStart(
          hashKey(deck),
          options.idleMs,
          id,
          JSON.stringify({ startedAt }),
          CHANNEL,
          JSON.stringify(deck),
          JSON.stringify(session),
        )) === 1;
      const stored = await get(deck);
      if (!stored) throw new Error(`the live session on '${deck}' vanished right after it started`);
      return { stored, created };
    },
    async end(deck, reason) {
      return (await r.osbeLiveEnd(hashKey(deck), CHANNEL, JSON.stringify(deck), JSON.stringify(reason), outPrefix(deck))) === 1;
    },
    async update(deck, update) {
      let field: string;
      let value: string;
      let runId = "";
      switch (update.kind) {
        case "slide":
          field = "slide";
          value = JSON.stringify(update.slide);
          break;
        case "show-join":
          field = "showJoin";
          value = String(update.show);
          break;
        case "code":
          field = `code:${update.block}`;
          value = JSON.stringify(update.files);
          break;
        case "run":
          field = update.block;
          value = JSON.stringify(update.event);
          runId = update.runId;
          break;
      }
      const seq = await r.osbeLiveUpdate(
        hashKey(deck),
        options.idleMs,
        update.kind,
        field,
        value,
        CHANNEL,
        JSON.stringify(deck),
        JSON.stringify(update),
        outPrefix(deck),
        runId,
      );
      return seq > 0;
    },
    async reportCounts(deck, instanceId, counts, ttlMs) {
      const key = countsKey(deck);
      const message: LiveBusMessage = { deck, sessionId: "", seq: 0, change: { kind: "counts" } };
      await redis
        .multi()
        .hset(key, instanceId, JSON.stringify({ ...counts, until: Date.now() + ttlMs }))
        .pexpire(key, ttlMs)
        .publish(CHANNEL, JSON.stringify(message))
        .exec();
    },
    async readCounts(deck) {
      const all = await redis.hgetall(countsKey(deck));
      const total: FollowerCounts = { following: 0, detached: 0 };
      const now = Date.now();
      for (const value of Object.values(all)) {
        const c = JSON.parse(value) as FollowerCounts & { until: number };
        if (c.until < now) continue;
        total.following += c.following;
        total.detached += c.detached;
      }
      return total;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      listeners.clear();
      subscriber.disconnect();
    },
  };
}

export function createRedisLecturerStore(redis: Redis, delays: TryDelays = DEFAULT_TRY_DELAYS): LecturerStore {
  const r = scripted(redis);
  const sessionKey = (idHash: string) => redisKey("lecturer", "session", idHash);
  const triesKey = (client: string) => redisKey("lecturer", "tries", client);
  return {
    async addSession(idHash, ttlMs) {
      await redis.set(sessionKey(idHash), "1", "PX", ttlMs);
    },
    async hasSession(idHash) {
      return (await redis.exists(sessionKey(idHash))) === 1;
    },
    async removeSession(idHash) {
      await redis.del(sessionKey(idHash));
    },
    async beginTry(client, now) {
      return r.osbeLecturerBeginTry(triesKey(client), now, TRY_MEMORY_MS, delays.baseMs, delays.maxMs);
    },
    async endTry(client, ok, now) {
      if (ok) await redis.del(triesKey(client));
      else await r.osbeLecturerFailTry(triesKey(client), now, TRY_MEMORY_MS, delays.baseMs, delays.maxMs);
    },
    async agreeToken(candidate) {
      // SET NX GET: the token already there, or ours if there was none.
      const existing = (await redis.call("SET", redisKey("lecturer", "token"), candidate, "NX", "GET")) as string | null;
      return existing ?? candidate;
    },
    async close() {
      /* the connection belongs to server/redis.ts */
    },
  };
}
