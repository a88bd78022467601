"""The Lua scripts of the Redis layer: each one call, one round trip, atomic on its server.

Entries are ``<expires_at>|<packed message>`` in a normal channel's list and
``<expires_at>|<channel>|<packed message>`` in a process list (one per process prefix). Every
script declares the keys it touches, and every key carries a hash tag (``{...}``) so that the
keys of one channel, one process prefix or one group share a Redis Cluster slot.

A member of a push takes three keys: its list, its count hash (process lists count each
channel's entries there, for capacity; a normal channel's list length is its count) and its
refusal counter.
"""

from __future__ import annotations

# push(list, counts, full, channel, capacity) queues the entry and returns 0, or counts a
# refused send and returns 1 when the channel is full; flush() then appends each list's queued
# entries with one RPUSH and renews its expiry once, so a group send to many channels of one
# process costs one counter update per member and a few calls per list. Refusal counters
# live a day after their last increment. ARGV[1..4] of every pushing script: now,
# expires_at, ttl, payload.
_PUSH = """
local now, expires_at, ttl, payload = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local queued, lists = {}, {}
local function refuse(full, channel, process)
  if process then
    redis.call('HINCRBY', full, channel, 1)
  else
    redis.call('INCR', full)
  end
  redis.call('EXPIRE', full, 86400)
  return 1
end
local function push(list, counts, full, channel, capacity)
  local process = string.find(channel, '!', 1, true)
  local entry
  if process then
    if redis.call('HINCRBY', counts, channel, 1) > capacity then
      redis.call('HINCRBY', counts, channel, -1)
      return refuse(full, channel, true)
    end
    entry = expires_at .. '|' .. channel .. '|' .. payload
  else
    local n = redis.call('LLEN', list) + #(queued[list] or {})
    -- Expired entries at the head do not hold capacity.
    while n >= capacity and n > 0 do
      local head = redis.call('LINDEX', list, 0)
      if not head then break end
      if tonumber(string.sub(head, 1, string.find(head, '|', 1, true) - 1)) > now then break end
      redis.call('LPOP', list)
      n = n - 1
    end
    if n >= capacity then return refuse(full, channel, false) end
    entry = expires_at .. '|' .. payload
  end
  local queue = queued[list]
  if not queue then
    queue = {}
    queued[list] = queue
    lists[#lists + 1] = {list, process and counts}
  end
  queue[#queue + 1] = entry
  return 0
end
local function flush()
  for _, item in ipairs(lists) do
    local queue = queued[item[1]]
    for first = 1, #queue, 1000 do
      redis.call('RPUSH', item[1], unpack(queue, first, math.min(first + 999, #queue)))
    end
    redis.call('EXPIRE', item[1], ttl)
    if item[2] then redis.call('EXPIRE', item[2], ttl) end
  end
end
"""

# KEYS: list, counts, full. ARGV: now, expires_at, ttl, payload, channel, capacity.
SEND = (
    _PUSH
    + """
local full = push(KEYS[1], KEYS[2], KEYS[3], ARGV[5], tonumber(ARGV[6]))
flush()
return full
"""
)

# KEYS: the three keys of the first member, which route the call (on a Redis Cluster,
# declared keys must share one slot). ARGV: now, expires_at, ttl, payload, then per member
# its three keys, channel and capacity. Returns how many members were full. On a Redis
# Cluster every member is on the node of the call but in slots of its own, which the
# allow-cross-slot-keys flag permits for keys a script does not declare (Redis 7).
PUSH_MANY = (
    _PUSH
    + """
local full = 0
for i = 5, #ARGV, 5 do
  full = full + push(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]))
end
flush()
return full
"""
)
CLUSTER_FLAGS = "#!lua flags=allow-cross-slot-keys\n"

# The members of a group and their capacities, flat; expired members are removed first.
# KEYS: members (sorted set), capacities (hash). ARGV: now.
_MEMBERS = """
local function members(members_key, capacities_key, now)
  local expired = redis.call('ZRANGEBYSCORE', members_key, '-inf', now)
  if #expired > 0 then
    redis.call('ZREM', members_key, unpack(expired))
    redis.call('HDEL', capacities_key, unpack(expired))
  end
  local channels = redis.call('ZRANGE', members_key, 0, -1)
  local result = {}
  for first = 1, #channels, 1000 do
    local last = math.min(first + 999, #channels)
    local capacities = redis.call('HMGET', capacities_key, unpack(channels, first, last))
    for i = first, last do
      result[#result + 1] = channels[i]
      result[#result + 1] = capacities[i - first + 1] or '1'
    end
  end
  return result
end
"""
GROUP_MEMBERS = _MEMBERS + "return members(KEYS[1], KEYS[2], tonumber(ARGV[1]))\n"

# A whole group send on a one-server layer: the members' keys are computed here, so this script
# is used only where every key lives on the one server (never on a Redis Cluster).
# KEYS: members, capacities. ARGV: now, expires_at, ttl, payload, key prefix.
GROUP_SEND_LOCAL = (
    _PUSH
    + _MEMBERS
    + """
local prefix = ARGV[5]
local flat = members(KEYS[1], KEYS[2], now)
local full = 0
-- The keys of each process prefix, made once: members are often reply channels of a few
-- processes.
local keys_of = {}
for i = 1, #flat, 2 do
  local channel = flat[i]
  local bang = string.find(channel, '!', 1, true)
  local tag = channel
  local kind = 'c:'
  if bang then
    tag = string.sub(channel, 1, bang)
    kind = 'p:'
  end
  local keys = keys_of[tag]
  if not keys then
    keys = {prefix .. kind .. '{' .. tag .. '}', prefix .. 'n:{' .. tag .. '}',
            prefix .. 'f:{' .. tag .. '}'}
    if bang then keys_of[tag] = keys end
  end
  full = full + push(keys[1], keys[2], keys[3], channel, tonumber(flat[i + 1]))
end
flush()
return full
"""
)

# KEYS: members, capacities. ARGV: channel, expires_at (score), capacity, ttl.
GROUP_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
"""

# KEYS: members, capacities. ARGV: channel.
GROUP_DISCARD = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
"""

# Pops up to ARGV[1] entries (and about ARGV[2] bytes) from a process list and frees their
# capacity, and that of the channels in ARGV[3..] (of entries a BLPOP took).
# KEYS: list, counts.
POP_BATCH = """
local entries = {}
if tonumber(ARGV[1]) > 0 then entries = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1) end
local size, taken, freed = 0, 0, {}
for i = 3, #ARGV do freed[ARGV[i]] = (freed[ARGV[i]] or 0) + 1 end
for _, entry in ipairs(entries) do
  if size >= tonumber(ARGV[2]) then break end
  taken = taken + 1
  size = size + #entry
  local first = string.find(entry, '|', 1, true)
  local channel = string.sub(entry, first + 1, string.find(entry, '|', first + 1, true) - 1)
  freed[channel] = (freed[channel] or 0) + 1
end
if taken > 0 then redis.call('LTRIM', KEYS[1], taken, -1) end
-- One HMGET and one HDEL for the channels emptied (the usual case), HINCRBY for the others.
local channels = {}
for channel in pairs(freed) do channels[#channels + 1] = channel end
for first = 1, #channels, 1000 do
  local last = math.min(first + 999, #channels)
  local counts = redis.call('HMGET', KEYS[2], unpack(channels, first, last))
  local emptied = {}
  for i = first, last do
    local channel = channels[i]
    if tonumber(counts[i - first + 1] or '0') <= freed[channel] then
      emptied[#emptied + 1] = channel
    else
      redis.call('HINCRBY', KEYS[2], channel, -freed[channel])
    end
  end
  if #emptied > 0 then redis.call('HDEL', KEYS[2], unpack(emptied)) end
end
if taken < #entries then
  local kept = {}
  for i = 1, taken do kept[i] = entries[i] end
  return kept
end
return entries
"""

# Puts entries back at the head of a list, oldest first (ARGV[3..]); in a process list
# (ARGV[2] is '1') each entry counts against its channel's capacity again.
# KEYS: list, counts. ARGV: ttl, process, entries.
PUSH_BACK = """
for i = #ARGV, 3, -1 do
  local entry = ARGV[i]
  redis.call('LPUSH', KEYS[1], entry)
  if ARGV[2] == '1' then
    local first = string.find(entry, '|', 1, true)
    local channel = string.sub(entry, first + 1, string.find(entry, '|', first + 1, true) - 1)
    redis.call('HINCRBY', KEYS[2], channel, 1)
    redis.call('EXPIRE', KEYS[2], ARGV[1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""
