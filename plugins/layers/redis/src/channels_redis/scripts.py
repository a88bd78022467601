"""The Lua scripts of the Redis layer: each one call, one round trip, atomic on its server.

Entries are ``<expires_at>|<packed message>`` in a normal channel's list and
``<expires_at>|<channels>|<packed message>`` in a process list (one per process prefix), where
``<channels>`` names the channels of that process the message is for, separated by commas
(channel names never hold a comma or a ``|``): one for a send, every member of that process
that accepted it for a group send. The packed message of a group send to a group with history
is preceded by its position, ``@<epoch>:<offset>|`` (see :mod:`channels_redis.history`). Every
script declares the keys it touches, and every key carries a hash tag (``{...}``) so that the
keys of one channel, one process prefix or one group share a Redis Cluster slot.

A member of a push takes three keys: its list, its count hash and its refusal counter. A normal
channel's list length is its count. A process list's channels are counted one by one in its
count hash only while one of them could be full: each channel holds at most one entry per entry
of the list, so while the list is shorter than the capacity of every channel sent to, none is,
and a group send to a thousand channels of a process updates no count at all. Once one could
be full, the count hash is filled from the list and marked counted (its field ``!``, which no
channel is named), and it stays so until the list is emptied. Every pop of a process list goes
through :data:`POP_BATCH`, so the counts stay exact.
"""

from __future__ import annotations

# push(list, counts, full, channel, capacity) queues a send to one channel; flush() then stores
# what was queued and returns how many members were full (each refusal counted on its
# channel's refusal counter, which lives a day after its last increment). A normal channel's
# entries are appended with one RPUSH per list, after its capacity is checked against the list
# length (expired entries at the head do not hold capacity). The channels of one process list
# are checked together: not at all while none could be full (see above), else one HMGET and
# one HSET of their counts per 1,000; the message is stored once for all of them: one entry
# naming every channel that accepted it, which the owner fans out when it pops the entry.
# ARGV[1..4] of every pushing script: now, expires_at, ttl, payload.
_PUSH = """
local now, expires_at, ttl, payload = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local queued, lists, owned, owners = {}, {}, {}, {}
local function refuse(full, channel, process)
  if process then
    redis.call('HINCRBY', full, channel, 1)
  else
    redis.call('INCR', full)
  end
  redis.call('EXPIRE', full, 86400)
  return 1
end
-- The sends queued for the channels of one process list.
local function owner_of(list, counts, full)
  local owner = owned[list]
  if not owner then
    owner = {list = list, counts = counts, full = full, n = 0, channels = {}, capacities = {}}
    owned[list] = owner
    owners[#owners + 1] = owner
  end
  return owner
end
local function queue_owned(owner, channel, capacity)
  local n = owner.n + 1
  owner.n = n
  owner.channels[n] = channel
  owner.capacities[n] = capacity
end
-- Whether the channels of *owner*'s list must be counted one by one for this push: once the
-- list could hold as many entries as the smallest capacity sent to, the count hash is filled
-- from the list (one pass) and marked counted, until the list is emptied.
local function counted(owner, ttl)
  local length = redis.call('LLEN', owner.list)
  if redis.call('HEXISTS', owner.counts, '!') == 1 then
    if length > 0 then return true end
    -- Left by a list that expired: an empty list counts nothing.
    redis.call('DEL', owner.counts)
  end
  local smallest = math.huge
  for i = 1, owner.n do smallest = math.min(smallest, owner.capacities[i]) end
  if length < smallest then return false end
  local found = {}
  for _, entry in ipairs(redis.call('LRANGE', owner.list, 0, -1)) do
    local first = string.find(entry, '|', 1, true)
    local names = string.sub(entry, first + 1, string.find(entry, '|', first + 1, true) - 1)
    for channel in string.gmatch(names, '[^,]+') do found[channel] = (found[channel] or 0) + 1 end
  end
  redis.call('DEL', owner.counts)
  local fields, f = {'!', 1}, 2
  for channel, count in pairs(found) do
    fields[f + 1] = channel
    fields[f + 2] = count
    f = f + 2
  end
  for first = 1, #fields, 2000 do
    redis.call('HSET', owner.counts, unpack(fields, first, math.min(first + 1999, #fields)))
  end
  redis.call('EXPIRE', owner.counts, ttl)
  return true
end
local function push(list, counts, full, channel, capacity)
  if string.find(channel, '!', 1, true) then
    queue_owned(owner_of(list, counts, full), channel, capacity)
    return 0
  end
  local n = redis.call('LLEN', list) + #(queued[list] or {})
  while n >= capacity and n > 0 do
    local head = redis.call('LINDEX', list, 0)
    if not head then break end
    if tonumber(string.sub(head, 1, string.find(head, '|', 1, true) - 1)) > now then break end
    redis.call('LPOP', list)
    n = n - 1
  end
  if n >= capacity then return refuse(full, channel, false) end
  local queue = queued[list]
  if not queue then
    queue = {}
    queued[list] = queue
    lists[#lists + 1] = list
  end
  queue[#queue + 1] = expires_at .. '|' .. payload
  return 0
end
local function flush()
  for _, list in ipairs(lists) do
    local queue = queued[list]
    for first = 1, #queue, 1000 do
      redis.call('RPUSH', list, unpack(queue, first, math.min(first + 999, #queue)))
    end
    redis.call('EXPIRE', list, ttl)
  end
  local full = 0
  for _, owner in ipairs(owners) do
    local channels, capacities, accepted, taken = owner.channels, owner.capacities, {}, 0
    local checked = owner.n
    if not counted(owner, ttl) then accepted, taken, checked = channels, owner.n, 0 end
    for first = 1, checked, 1000 do
      local last = math.min(first + 999, owner.n)
      local counts = redis.call('HMGET', owner.counts, unpack(channels, first, last))
      local updates, u = {}, 0
      for i = first, last do
        local count = tonumber(counts[i - first + 1] or '0') + 1
        if count > capacities[i] then
          full = full + refuse(owner.full, channels[i], true)
        else
          taken = taken + 1
          accepted[taken] = channels[i]
          updates[u + 1] = channels[i]
          updates[u + 2] = count
          u = u + 2
        end
      end
      if u > 0 then redis.call('HSET', owner.counts, unpack(updates)) end
    end
    if taken > 0 then
      redis.call('RPUSH', owner.list,
                 expires_at .. '|' .. table.concat(accepted, ',') .. '|' .. payload)
      redis.call('EXPIRE', owner.list, ttl)
      redis.call('EXPIRE', owner.counts, ttl)
    end
  end
  return full
end
"""

# KEYS: list, counts, full. ARGV: now, expires_at, ttl, payload, channel, capacity.
SEND = (
    _PUSH
    + """
local full = push(KEYS[1], KEYS[2], KEYS[3], ARGV[5], tonumber(ARGV[6]))
return full + flush()
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
return full + flush()
"""
)
CLUSTER_FLAGS = "#!lua flags=allow-cross-slot-keys\n"

# members() gives the members of a group and their capacities, two lists; expired members are
# removed first (with their presence).
_MEMBERS = """
local function members(members_key, capacities_key, presence_key, now)
  local expired = redis.call('ZRANGEBYSCORE', members_key, '-inf', now)
  for first = 1, #expired, 1000 do
    local last = math.min(first + 999, #expired)
    redis.call('ZREM', members_key, unpack(expired, first, last))
    redis.call('HDEL', capacities_key, unpack(expired, first, last))
    redis.call('HDEL', presence_key, unpack(expired, first, last))
  end
  local channels, capacities = redis.call('ZRANGE', members_key, 0, -1), {}
  for first = 1, #channels, 1000 do
    local last = math.min(first + 999, #channels)
    local found = redis.call('HMGET', capacities_key, unpack(channels, first, last))
    for i = first, last do capacities[i] = tonumber(found[i - first + 1] or '1') end
  end
  return channels, capacities
end
"""
# A group's history (the ``history`` option): the hash of its epoch, the last offset given and
# the highest offset dropped, and the list of its kept messages, oldest first, as entries
# '<offset>|<kept at>|<message>', the time in milliseconds of the server's clock (one clock for
# every process). Offsets in the list follow each other, so an offset's index is its distance
# from the head's.
_HISTORY = """
local function server_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function offset_of(entry)
  return tonumber(string.sub(entry, 1, string.find(entry, '|', 1, true) - 1))
end
-- Drops the entries past *size* or older than *ttl_ms* (0: no such bound), and remembers the
-- highest offset dropped.
local function trim_history(state, list, size, ttl_ms, now_ms)
  local dropped
  if size > 0 then
    local extra = redis.call('LLEN', list) - size
    if extra > 0 then
      dropped = offset_of(redis.call('LINDEX', list, extra - 1))
      redis.call('LTRIM', list, extra, -1)
    end
  end
  if ttl_ms > 0 then
    local oldest, head = now_ms - ttl_ms, redis.call('LINDEX', list, 0)
    while head do
      local first = string.find(head, '|', 1, true)
      local second = string.find(head, '|', first + 1, true)
      if tonumber(string.sub(head, first + 1, second - 1)) >= oldest then break end
      redis.call('LPOP', list)
      dropped = tonumber(string.sub(head, 1, first - 1))
      head = redis.call('LINDEX', list, 0)
    end
  end
  if dropped then redis.call('HSET', state, 'dropped', dropped) end
end
-- Keeps *message* as the group's next one and returns its epoch and offset. ARGV[i..i + 3]: a
-- fresh epoch, size, ttl_ms, lifetime_ms. The fresh epoch is the group's when it has none (its
-- history was never kept, or was lost with the server), so positions from before are known to
-- be of another epoch. Both keys live lifetime_ms after the group's last message.
local function keep(state, list, message, i)
  local epoch = ARGV[i]
  if redis.call('HSETNX', state, 'epoch', epoch) == 1 then
    redis.call('DEL', list)
  else
    epoch = redis.call('HGET', state, 'epoch')
  end
  local offset = redis.call('HINCRBY', state, 'last', 1)
  local now_ms = server_ms()
  redis.call('RPUSH', list, string.format('%d|%d|', offset, now_ms) .. message)
  trim_history(state, list, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), now_ms)
  redis.call('PEXPIRE', state, ARGV[i + 3])
  redis.call('PEXPIRE', list, ARGV[i + 3])
  return epoch, offset
end
"""

# The group's members and their capacities, for a group send over several servers, after the
# message is kept in the group's history if it keeps one: {epoch, offset, channel, capacity,
# ...}, epoch '' and offset 0 without history. KEYS: members, capacities, presence, history
# state, history. ARGV: now; for a group with history, then the packed message, a fresh epoch,
# size, ttl_ms, lifetime_ms.
GROUP_MEMBERS = (
    _MEMBERS
    + _HISTORY
    + """
local epoch, offset = '', 0
if ARGV[2] then epoch, offset = keep(KEYS[4], KEYS[5], ARGV[2], 3) end
local channels, capacities = members(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))
local reply = {epoch, offset}
for i = 1, #channels do
  reply[2 * i + 1] = channels[i]
  reply[2 * i + 2] = capacities[i]
end
return reply
"""
)

# What a group kept after a position: {} when the group has no history state, else {epoch,
# last offset, highest offset dropped, the entries after the position...}. What the list no
# longer holds counts as dropped even when it went another way (a server evicting keys).
# KEYS: history state, history. ARGV: size, ttl_ms, the position's epoch ('' for none) and
# offset.
GROUP_HISTORY = (
    _HISTORY
    + """
local state, list = KEYS[1], KEYS[2]
if redis.call('EXISTS', state) == 0 then return {} end
trim_history(state, list, tonumber(ARGV[1]), tonumber(ARGV[2]), server_ms())
local found = redis.call('HMGET', state, 'epoch', 'last', 'dropped')
local epoch, last = found[1], tonumber(found[2])
local head = redis.call('LINDEX', list, 0)
local first = last + 1
if head then first = offset_of(head) end
local dropped = math.max(tonumber(found[3] or '0'), first - 1)
local start = 0
if ARGV[3] == epoch then start = math.max(0, tonumber(ARGV[4]) - first + 1) end
local reply = {epoch, last, dropped}
for _, entry in ipairs(redis.call('LRANGE', list, start, -1)) do reply[#reply + 1] = entry end
return reply
"""
)

# A whole group send on a one-server layer: the members' keys are computed here, so this script
# is used only where every key lives on the one server (never on a Redis Cluster). Members of a
# process are gathered by their process prefix, whose keys are made once. A group with history
# keeps the message first, and its members get it after its position: '@<epoch>:<offset>|'.
# Returns {epoch, offset, how many members were full}, epoch '' and offset 0 without history.
# KEYS: members, capacities, presence, history state, history. ARGV: now, expires_at, ttl,
# payload, key prefix; for a group with history, then a fresh epoch, size, ttl_ms, lifetime_ms.
GROUP_SEND_LOCAL = (
    _PUSH
    + _MEMBERS
    + _HISTORY
    + """
local prefix = ARGV[5]
local epoch, offset = '', 0
if ARGV[6] then
  epoch, offset = keep(KEYS[4], KEYS[5], payload, 6)
  payload = '@' .. epoch .. ':' .. offset .. '|' .. payload
end
local channels, capacities = members(KEYS[1], KEYS[2], KEYS[3], now)
local full, by_tag, find, sub = 0, {}, string.find, string.sub
for i = 1, #channels do
  local channel, capacity = channels[i], capacities[i]
  local bang = find(channel, '!', 1, true)
  if bang then
    local tag = sub(channel, 1, bang)
    local owner = by_tag[tag]
    if not owner then
      owner = owner_of(prefix .. 'p:{' .. tag .. '}', prefix .. 'n:{' .. tag .. '}',
                       prefix .. 'f:{' .. tag .. '}')
      by_tag[tag] = owner
    end
    queue_owned(owner, channel, capacity)
  else
    local tagged = '{' .. channel .. '}'
    full = full + push(prefix .. 'c:' .. tagged, prefix .. 'n:' .. tagged,
                       prefix .. 'f:' .. tagged, channel, capacity)
  end
end
return {epoch, offset, full + flush()}
"""
)

# KEYS: members, capacities, presence. ARGV: channel, expires_at (score), capacity, ttl, and
# the member's presence ('<process id>|<packed info>') when it is present.
GROUP_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[5] then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
"""

# KEYS: members, capacities, presence. ARGV: channel.
GROUP_DISCARD = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
"""

# The present members whose membership has not expired, flat: channel, presence, ...; the
# presence of the others is removed. KEYS: members, presence. ARGV: now.
GROUP_PRESENCE = """
local now, found, live, gone = tonumber(ARGV[1]), redis.call('HGETALL', KEYS[2]), {}, {}
for i = 1, #found, 2 do
  local expires_at = redis.call('ZSCORE', KEYS[1], found[i])
  if expires_at and tonumber(expires_at) > now then
    live[#live + 1] = found[i]
    live[#live + 1] = found[i + 1]
  else
    gone[#gone + 1] = found[i]
  end
end
for first = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[2], unpack(gone, first, math.min(first + 999, #gone)))
end
return live
"""

# Removes the presence of members whose process stopped renewing its heartbeat, unless it
# changed since it was read (added again by a live process). KEYS: presence. ARGV: channel,
# presence, ...
FORGET_PRESENCE = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
"""

# Pops up to ARGV[1] entries (and about ARGV[2] bytes) from a process list and frees their
# capacity: nothing to free while its channels are not counted one by one, and emptying the
# list ends their counting. The batch popped is kept in the popper's in-flight list (KEYS[3],
# which expires after ARGV[3] seconds) until its next pop, in place of the batch before: if
# the reply is lost with the connection, the popper reads it there (channels_redis.popping).
# KEYS: list, counts, in-flight list.
POP_BATCH = """
redis.call('DEL', KEYS[3])
local entries = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local size, taken, limit = 0, 0, tonumber(ARGV[2])
for _, entry in ipairs(entries) do
  if size >= limit then break end
  taken = taken + 1
  size = size + #entry
end
if taken == 0 then return entries end
if taken < #entries then
  local kept = {}
  for i = 1, taken do kept[i] = entries[i] end
  entries = kept
end
redis.call('LTRIM', KEYS[1], taken, -1)
for first = 1, taken, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(entries, first, math.min(first + 999, taken)))
end
redis.call('EXPIRE', KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return entries
end
if redis.call('HEXISTS', KEYS[2], '!') == 0 then return entries end
local freed, channels = {}, {}
for _, entry in ipairs(entries) do
  local first = string.find(entry, '|', 1, true)
  local names = string.sub(entry, first + 1, string.find(entry, '|', first + 1, true) - 1)
  for channel in string.gmatch(names, '[^,]+') do
    if not freed[channel] then channels[#channels + 1] = channel end
    freed[channel] = (freed[channel] or 0) + 1
  end
end
-- One HMGET and one HDEL for the channels emptied (the usual case), HINCRBY for the others.
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
return entries
"""

# Puts entries back at the head of a list, oldest first (ARGV[3..]); in a process list
# (ARGV[2] is '1') whose channels are counted one by one, each entry counts against the
# capacity of its channels again (uncounted, the list's length holds it).
# KEYS: list, counts. ARGV: ttl, process, entries.
PUSH_BACK = """
local counted = false
if ARGV[2] == '1' then
  if redis.call('LLEN', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[2])
  else
    counted = redis.call('HEXISTS', KEYS[2], '!') == 1
  end
end
for i = #ARGV, 3, -1 do
  local entry = ARGV[i]
  redis.call('LPUSH', KEYS[1], entry)
  if counted then
    local first = string.find(entry, '|', 1, true)
    local names = string.sub(entry, first + 1, string.find(entry, '|', first + 1, true) - 1)
    for channel in string.gmatch(names, '[^,]+') do
      redis.call('HINCRBY', KEYS[2], channel, 1)
    end
    redis.call('EXPIRE', KEYS[2], ARGV[1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""

# Counts messages a receiver dropped because it could not decrypt or read them: a hash by
# channel for a process prefix, a counter for a normal channel; it lives a day after its last
# increment, like the refusal counters. KEYS: counter. ARGV: channel, how many, process ('1').
COUNT_DROPPED = """
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('INCRBY', KEYS[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], 86400)
"""

# Delayed messages (see :mod:`channels_redis.delays`) are members of one sorted set scored by
# due time: '<first due>|<capacity>|<channel>|<id>|<packed message>', the capacity fixed when
# the message was added (as a group member's is) and the id making each member unique.

# Adds members to the sorted set of delayed messages, or moves them to a later due time.
# KEYS: the set. ARGV: due, member, due, member...
DELAY_ADD = """
for i = 1, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
"""

# The due time of the next delayed message, or '' when none is kept.
_NEXT_DUE = """
local function next_due(key)
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return head[2] or ''
end
"""

# Moves up to ARGV[6] due delayed messages to their channels on a one-server layer: each
# message leaves the set in the call that pushes it (the channel's keys are computed here, so
# never on a Redis Cluster). A message whose channel is full stays, due again ARGV[8] seconds
# later, until ARGV[7] (the expiry) seconds past its first due time, when it is dropped.
# Returns {delivered, next due, the channel of each dropped message...}.
# KEYS: the set. ARGV: now, expires_at, ttl, '' (the payload, set per message), key prefix,
# limit, expiry, retry interval.
DELAY_DELIVER_LOCAL = (
    _PUSH
    + _NEXT_DUE
    + """
local prefix, expiry, retry = ARGV[5], tonumber(ARGV[7]), tonumber(ARGV[8])
local find, sub = string.find, string.sub
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[6]))
local delivered, reply = 0, {}
for _, member in ipairs(due) do
  local first = find(member, '|', 1, true)
  local second = find(member, '|', first + 1, true)
  local third = find(member, '|', second + 1, true)
  local channel = sub(member, second + 1, third - 1)
  payload = sub(member, find(member, '|', third + 1, true) + 1)
  local tag, kind = channel, 'c:'
  local bang = find(channel, '!', 1, true)
  if bang then tag, kind = sub(channel, 1, bang), 'p:' end
  tag = '{' .. tag .. '}'
  local full = push(prefix .. kind .. tag, prefix .. 'n:' .. tag, prefix .. 'f:' .. tag,
                    channel, tonumber(sub(member, first + 1, second - 1)))
  full = full + flush()
  queued, lists, owned, owners = {}, {}, {}, {}
  if full == 0 then
    redis.call('ZREM', KEYS[1], member)
    delivered = delivered + 1
  elseif now - tonumber(sub(member, 1, first - 1)) >= expiry then
    redis.call('ZREM', KEYS[1], member)
    reply[#reply + 1] = channel
  else
    redis.call('ZADD', KEYS[1], 'XX', now + retry, member)
  end
end
table.insert(reply, 1, next_due(KEYS[1]))
table.insert(reply, 1, delivered)
return reply
"""
)

# Takes up to ARGV[2] delayed messages due at ARGV[1] out of the set, for a layer of several
# servers, which then pushes each to its channel's server. Returns {next due, members...}.
# KEYS: the set.
DELAY_TAKE = (
    _NEXT_DUE
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for first = 1, #due, 1000 do
  redis.call('ZREM', KEYS[1], unpack(due, first, math.min(first + 999, #due)))
end
table.insert(due, 1, next_due(KEYS[1]))
return due
"""
)
