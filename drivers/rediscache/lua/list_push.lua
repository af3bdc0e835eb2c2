-- Push onto a list, with a TTL for a list that this call creates, in one atomic step.
-- KEYS[1]: the list. ARGV[1]: "1" to prepend (LPUSH), "0" to append (RPUSH).
-- ARGV[2]: the TTL in milliseconds for a new list (0: none). ARGV[3..]: the items.
-- An existing list keeps its remaining TTL (LPUSH and RPUSH never touch it). A key that
-- holds something other than a list makes the first push fail with WRONGTYPE before
-- anything is written.
-- Returns the new length.
local existed = redis.call("EXISTS", KEYS[1])
local cmd = "RPUSH"
if ARGV[1] == "1" then
  cmd = "LPUSH"
end
local n = 0
-- unpack is bounded by Lua's stack: push in chunks.
for i = 3, #ARGV, 1000 do
  n = redis.call(cmd, KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if existed == 0 then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call("PEXPIRE", KEYS[1], ttl)
  end
end
return n
