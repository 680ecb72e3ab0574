package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts of webhooks across nodes (webhook.go). An outbox entry is
// "seq\tarrived\troom\tperson\tname" (arrived 1/0, person "" for the room
// itself): the name last, as it is the one part that may hold a tab. Every
// script that appends to the one cluster outbox takes the numbers from the
// sequence in the same call, so the list is in the order of the numbers.

// luaSeqOf reads the number at the head of an outbox entry.
const luaSeqOf = `
local function seqOf(e) return tonumber(string.sub(e, 1, string.find(e, '\t', 1, true) - 1)) end`

// luaBound trims the outbox to its newest limit and sets dropped to how
// many of the oldest went. Needs limit.
const luaBound = `
local over = redis.call('LLEN', KEYS[4]) - limit
local dropped = 0
if over > 0 then
  redis.call('LTRIM', KEYS[4], over, -1)
  dropped = over
end`

// claimScript records a holder's transitions, returns for each its number
// in the cluster's order if it is the cluster's transition and so to be
// told, else 0, then how many of the oldest entries the outbox dropped; it
// appends those told to the cluster outbox, keeping the newest limit.
// KEYS: holders set, the holder's hash, the sequence, the outbox. ARGV:
// holder, room prefix, limit, then (room, person, name, arrived 1/0) for
// each transition.
var claimScript = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local limit = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 4 do
  local room, who, name, arrived = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local e = room .. '\t' .. who
  local k = ARGV[2] .. room
  local won = 0
  if arrived == '1' then
    if redis.call('HSETNX', KEYS[2], e, name) == 1 and redis.call('HINCRBY', k, who, 1) == 1 then won = 1 end
  elseif redis.call('HDEL', KEYS[2], e) == 1 then
    local n = redis.call('HINCRBY', k, who, -1)
    if n <= 0 then redis.call('HDEL', k, who) end
    if n == 0 then won = 1 end
  end
  if won == 1 then
    won = redis.call('INCR', KEYS[3])
    redis.call('RPUSH', KEYS[4], won .. '\t' .. arrived .. '\t' .. e .. '\t' .. name)
  end
  out[#out + 1] = won
end` + luaBound + `
out[#out + 1] = dropped
return out
`)

// orphanScript ends what dead holders hold: holders whose node is not in
// the live node set, and this node's own earlier incarnations. The
// transitions their end makes are appended to the cluster outbox: every
// person first, then the rooms, so that no member is told of in an empty
// room. It returns how many of the outbox's oldest entries were dropped to
// keep the newest limit. KEYS: holders set, node set, the sequence, the
// outbox. ARGV: room prefix, held prefix, this holder, this node id, limit.
var orphanScript = goredis.NewScript(luaNow + `
local limit = tonumber(ARGV[5])
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local tab = string.find(h, '\t', 1, true)
  local id = tab and string.sub(h, 1, tab - 1) or h
  local dead
  if id == ARGV[4] then
    dead = h ~= ARGV[3]
  else
    local s = redis.call('ZSCORE', KEYS[2], id)
    dead = (not s) or tonumber(s) < now
  end
  if dead then
    local held = ARGV[2] .. h
    local entries = redis.call('HGETALL', held)
    for pass = 1, 2 do
      for i = 1, #entries, 2 do
        local e = entries[i]
        local t = string.find(e, '\t', 1, true)
        local room, who = string.sub(e, 1, t - 1), string.sub(e, t + 1)
        if (who ~= '') == (pass == 1) then
          local k = ARGV[1] .. room
          local n = redis.call('HINCRBY', k, who, -1)
          if n <= 0 then redis.call('HDEL', k, who) end
          if n == 0 then redis.call('RPUSH', KEYS[4], redis.call('INCR', KEYS[3]) .. '\t0\t' .. e .. '\t' .. entries[i + 1]) end
        end
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[1], h)
  end
end` + luaBound + `
return dropped
`)

// nextScript takes or renews the sender's lease for the holder and, if the
// holder has it, returns {1, outbox length, batch id, entries...}: the
// batch being tried (the entries from the head up to the number it ended
// at, under its id, whoever tried it before) or, if there is none, a new
// one of at most max entries from the head, named prefix-first-count. Not
// the holder's: {0, outbox length}. max 0 only renews. KEYS: the lease,
// the outbox, the batch being tried ("last\tid"). ARGV: holder, lease ms,
// max, id prefix.
var nextScript = goredis.NewScript(luaSeqOf + `
local cur = redis.call('GET', KEYS[1])
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  return {0, redis.call('LLEN', KEYS[2])}
end
local len = redis.call('LLEN', KEYS[2])
local max = tonumber(ARGV[3])
if max == 0 or len == 0 then return {1, len} end
local entries = redis.call('LRANGE', KEYS[2], 0, max - 1)
local tried = redis.call('GET', KEYS[3])
local first = seqOf(entries[1])
if tried then
  local tab = string.find(tried, '\t', 1, true)
  local last, id = tonumber(string.sub(tried, 1, tab - 1)), string.sub(tried, tab + 1)
  if first <= last then
    local res = {1, len, id}
    for _, e in ipairs(entries) do
      if seqOf(e) > last then break end
      res[#res + 1] = e
    end
    local want = string.match(id, '%-(%d+)%-(%d+)$')
    -- Drops ate the head of the batch: what is left is another batch.
    if want == nil or tonumber(want) == first then return res end
    entries = {unpack(res, 4)}
  end
end
local id = ARGV[4] .. '-' .. first .. '-' .. #entries
redis.call('SET', KEYS[3], seqOf(entries[#entries]) .. '\t' .. id)
local res = {1, len, id}
for _, e in ipairs(entries) do res[#res + 1] = e end
return res
`)

// deliveredScript removes from the head of the outbox every entry numbered
// up to last, and forgets the batch being tried if it ended there. KEYS:
// the outbox, the batch being tried. ARGV: last.
var deliveredScript = goredis.NewScript(luaSeqOf + `
local last = tonumber(ARGV[1])
local n = 0
local more = true
while more do
  local entries = redis.call('LRANGE', KEYS[1], n, n + 999)
  if #entries == 0 then break end
  for _, e in ipairs(entries) do
    if seqOf(e) > last then more = false break end
    n = n + 1
  end
end
if n > 0 then redis.call('LTRIM', KEYS[1], n, -1) end
local tried = redis.call('GET', KEYS[2])
if tried and tonumber(string.sub(tried, 1, string.find(tried, '\t', 1, true) - 1)) <= last then
  redis.call('DEL', KEYS[2])
end
return n
`)

// releaseScript gives up the lease if the holder has it. KEYS: the lease.
// ARGV: holder.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
