package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts run atomically in Redis, each as one call (EVALSHA). Liveness
// uses Redis's own clock (TIME) and relative TTLs, never a node's clock.
// They touch node hashes by names built from the node set, so they need a
// single Redis (or a primary with replicas), not Redis Cluster.
//
// Keys: the node set is a sorted set of node ids scored by the Redis time
// (ms) until which each counts as alive; each node's hash maps its rooms to
// its streams in them, plus ":v" (version) and ":i" (incarnation).
//
// Redis counts every command a script runs, so the scripts keep those few:
// a tick at rest runs 3 besides the call itself, 6 on every hashEvery-th.
// A flush runs 5 and one more per 500 rooms it sets or 1,000 it removes.

// luaNow sets now to Redis's own clock, in milliseconds.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// flushScript writes this node's changed shares and publishes them.
// KEYS: node hash. ARGV: hash ttl ms, version, incarnation, full (0/1),
// channel, message, number of rooms to set (k), then k room, count pairs,
// then the rooms to remove. It returns 0, writing nothing, if a partial
// write finds the hash gone: the caller then rewrites it whole; and 2,
// writing nothing, if the hash already holds a later version of this
// incarnation.
var flushScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], ':i', ':v')
if cur[1] == ARGV[3] and tonumber(cur[2]) and tonumber(cur[2]) >= tonumber(ARGV[2]) then
  return 2 -- a later flush of this incarnation got there first (a retry, late)
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
elseif not cur[1] then
  return 0
end
-- unpack has a limit of about 8,000 values: send big batches in chunks.
local function chunked(cmd, from, to)
  local i = from
  while i <= to do
    local j = math.min(i + 999, to)
    local args = {KEYS[1]}
    for x = i, j do args[#args + 1] = ARGV[x] end
    redis.call(cmd, unpack(args))
    i = j + 1
  end
end
local k = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], ':v', ARGV[2], ':i', ARGV[3])
chunked('HSET', 8, 7 + 2 * k)
chunked('HDEL', 8 + 2 * k, #ARGV)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`)

// tickScript marks this node alive for ttl more (Redis time), and returns
// {whether this node was still in the set (1/0), live node ids}. Every
// hashEvery-th tick (renew = 1) it also renews the TTLs of this node's hash
// and of the set, drops the dead from the set, and reports 0 if the hash is
// gone.
// KEYS: node set, node hash. ARGV: ttl ms, node id, renew (0/1), hash ttl ms.
var tickScript = goredis.NewScript(luaNow + `
local known = 1 - redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
if ARGV[3] == '1' then
  known = known * redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
return {known, redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')}
`)

// snapshotScript returns every live node's hash: {id, {field, value, ...},
// ...}. KEYS: node set. ARGV: node hash prefix.
var snapshotScript = goredis.NewScript(luaNow + `
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
`)

// goneScript removes this node's hash and tells the others.
// KEYS: node hash, node set. ARGV: node id, channel, message.
var goneScript = goredis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// announceScript publishes a disconnect and, for a block, keeps it in the
// blocks set until it ends by Redis's clock (the later of two blocks of a
// user), dropping the blocks over.
// KEYS: blocks set. ARGV: member ID, block ms (0: none), longest block ms,
// channel, message.
var announceScript = goredis.NewScript(luaNow + `
local block = tonumber(ARGV[2])
if block > 0 then
  local untilMs = now + block
  local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
  if not cur or cur < untilMs then
    redis.call('ZADD', KEYS[1], untilMs, ARGV[1])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('PUBLISH', ARGV[4], ARGV[5])
`)

// blocksScript returns the blocks under way, at most ARGV[1] of them: {member
// ID, ms left, ...}. KEYS: blocks set.
var blocksScript = goredis.NewScript(luaNow + `
local out = {}
local r = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
for i = 1, #r, 2 do
  out[#out + 1] = r[i]
  out[#out + 1] = tostring(tonumber(r[i + 1]) - now)
end
return out
`)
