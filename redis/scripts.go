package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts run atomically in Redis, each as one command (EVALSHA), and
// use only relative TTLs (PEXPIRE), never a node's clock. They touch node
// hashes by a name built from the node set, so they need a single Redis (or
// a primary with replicas), not Redis Cluster.

// flushScript writes this node's changed shares and publishes them.
// KEYS: node hash, node set. ARGV: ttl ms, node id, version, incarnation,
// full (0/1), channel, message, then room, count pairs (count 0 removes the
// room).
// It returns 0, writing nothing, if a partial write finds the hash gone: the
// caller then rewrites it whole.
var flushScript = goredis.NewScript(`
if ARGV[5] == '1' then
  redis.call('DEL', KEYS[1])
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ':v', ARGV[3], ':i', ARGV[4])
for i = 8, #ARGV, 2 do
  if ARGV[i+1] == '0' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
`)

// tickScript renews this node's hash and the node set, forgets nodes whose
// hash has expired, and returns {own hash renewed (1/0), live node ids}.
// KEYS: node hash, node set. ARGV: ttl ms, node id, node hash prefix.
var tickScript = goredis.NewScript(`
local mine = redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. id) == 1 then
    live[#live + 1] = id
  else
    redis.call('SREM', KEYS[2], id)
  end
end
return {mine, live}
`)

// snapshotScript returns every live node's hash: {id, {field, value, ...},
// ...}. KEYS: node set. ARGV: node hash prefix.
var snapshotScript = goredis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
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
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)
