package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/presence/presence/presence"
)

// Webhooks across nodes. Each node claims its own transitions (its first
// stream of a room or of a person in it arriving, its last leaving); Redis
// keeps, per room, how many nodes hold the room and each person, so that
// only the first to arrive and the last to leave is the cluster's
// transition, told once. A node's claims are also kept under its name, so
// that when it dies another node ends them (Orphans).
//
// Keys: a set of the holders (node id, a tab, incarnation) that claimed;
// per holder a hash of what it holds, "room\tperson" (person "" for the
// room itself) to the person's name; per room a hash of person to the
// holders that hold them.
const (
	whHolders    = "presence:wh:holders"
	whHeldPrefix = "presence:wh:held:" // + holder
	whRoomPrefix = "presence:wh:room:" // + room
	whSeq        = "presence:wh:seq"   // the number of the last transition told
	// claimChunk bounds the transitions of one script call.
	claimChunk = 1000
)

// claimScript records a holder's transitions and returns, for each, its
// number in the cluster's order of transitions told if it is the
// cluster's, else 0. KEYS: holders set, the holder's hash, the sequence.
// ARGV: holder, room prefix, then (room, person, name, arrived 1/0) for
// each.
var claimScript = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local out = {}
for i = 3, #ARGV, 4 do
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
  if won == 1 then won = redis.call('INCR', KEYS[3]) end
  out[#out + 1] = won
end
return out
`)

// orphanScript ends what dead holders hold: holders whose node is not in
// the live node set, and this node's own earlier incarnations. It returns
// (room, person, name, number in the cluster's order) of each transition
// the caller is the one to tell: every person first, then the rooms, so
// that no member is told of in an empty room. KEYS: holders set, node set,
// the sequence. ARGV: room prefix, held prefix,
// this holder, this node id.
var orphanScript = goredis.NewScript(luaNow + `
local out = {}
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
          if n == 0 then
            out[#out + 1] = room
            out[#out + 1] = who
            out[#out + 1] = entries[i + 1]
            out[#out + 1] = tostring(redis.call('INCR', KEYS[3]))
          end
        end
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[1], h)
  end
end
return out
`)

// holder is this node's name among the claims.
func (b *Backend) holder() string { return b.id + "\t" + b.inc }

// Claim records this node's transitions, in order, and returns for each
// its number in the cluster's order if it is this node's to tell, else 0:
// see webhook.Arbiter.
func (b *Backend) Claim(ctx context.Context, ts []presence.Transition) ([]uint64, error) {
	out := make([]uint64, 0, len(ts))
	for len(ts) > 0 {
		chunk := ts[:min(len(ts), claimChunk)]
		ts = ts[len(chunk):]
		args := make([]any, 0, 2+4*len(chunk))
		args = append(args, b.holder(), whRoomPrefix)
		for _, t := range chunk {
			args = append(args, t.Room, t.Member.ID, t.Member.Name, boolArg(t.Arrived))
		}
		b.stats.commands.Add(1)
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		res, err := claimScript.Run(cctx, b.rdb, []string{whHolders, whHeldPrefix + b.holder(), whSeq}, args...).Int64Slice()
		cancel()
		if err == nil && len(res) != len(chunk) {
			err = fmt.Errorf("%d results for %d transitions", len(res), len(chunk))
		}
		if err != nil {
			b.stats.errs.Add(1)
			return nil, fmt.Errorf("claim webhook transitions: %w", err)
		}
		for _, seq := range res {
			out = append(out, uint64(max(seq, 0)))
		}
	}
	return out, nil
}

// Orphans ends the claims of dead nodes and returns the transitions this
// node is the one to tell, with their numbers: see webhook.Arbiter.
func (b *Backend) Orphans(ctx context.Context) ([]presence.Transition, []uint64, error) {
	b.stats.commands.Add(1)
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, err := orphanScript.Run(cctx, b.rdb, []string{whHolders, nodesKey, whSeq}, whRoomPrefix, whHeldPrefix, b.holder(), b.id).StringSlice()
	if err != nil {
		b.stats.errs.Add(1)
		return nil, nil, fmt.Errorf("end dead nodes' webhook claims: %w", err)
	}
	var out []presence.Transition
	var seqs []uint64
	for i := 0; i+3 < len(res); i += 4 {
		seq, err := strconv.ParseUint(res[i+3], 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("end dead nodes' webhook claims: %w", err)
		}
		out = append(out, presence.Transition{Room: res[i], Member: presence.MemberInfo{ID: res[i+1], Name: res[i+2]}})
		seqs = append(seqs, seq)
	}
	return out, seqs, nil
}
