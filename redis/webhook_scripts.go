package redis

import goredis "github.com/redis/go-redis/v9"

// The scripts of webhooks across nodes (webhook.go). An outbox entry is
// "seq\tarrived\troom\tperson\tname" (arrived 1/0, person "" for the room
// itself): the name last, as it is the one part that may hold a tab.

// claimScript records a holder's transitions, returns for each its number
// in the cluster's order if it is the cluster's transition and so the
// holder's to tell, else 0, and appends those it tells to the holder's
// outbox, keeping the newest limit. KEYS: holders set, the holder's hash,
// the sequence, the holder's outbox. ARGV: holder, room prefix, limit, then
// (room, person, name, arrived 1/0) for each transition.
var claimScript = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
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
end
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[3]), -1)
return out
`)

// orphanScript ends what dead holders hold: holders whose node is not in
// the live node set, and this node's own earlier incarnations. Each dead
// holder's outbox, what it had to tell and had not told, becomes the
// caller's, and so do the transitions its end makes that the caller is the
// one to tell: every person first, then the rooms, so that no member is
// told of in an empty room. It returns those entries, in the order they
// were appended to the caller's outbox, which keeps the newest limit.
// KEYS: holders set, node set, the sequence, the caller's outbox. ARGV:
// room prefix, held prefix, outbox prefix, this holder, this node id,
// limit.
var orphanScript = goredis.NewScript(luaNow + `
local out = {}
local function tell(entry)
  out[#out + 1] = entry
  redis.call('RPUSH', KEYS[4], entry)
end
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local tab = string.find(h, '\t', 1, true)
  local id = tab and string.sub(h, 1, tab - 1) or h
  local dead
  if id == ARGV[5] then
    dead = h ~= ARGV[4]
  else
    local s = redis.call('ZSCORE', KEYS[2], id)
    dead = (not s) or tonumber(s) < now
  end
  if dead then
    local box = ARGV[3] .. h
    for _, entry in ipairs(redis.call('LRANGE', box, 0, -1)) do tell(entry) end
    redis.call('DEL', box)
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
          if n == 0 then tell(redis.call('INCR', KEYS[3]) .. '\t0\t' .. e .. '\t' .. entries[i + 1]) end
        end
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[1], h)
  end
end
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[6]), -1)
return out
`)

// rewriteScript replaces a holder's outbox by the entries given, after
// trouble left it unlike the holder's queue. KEYS: the outbox. ARGV: the
// entries.
var rewriteScript = goredis.NewScript(`
redis.call('DEL', KEYS[1])
local i = 1
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
return 1
`)
