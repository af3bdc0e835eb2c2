-- Increment with a TTL for a new counter, in one atomic step.
-- KEYS[1]: the counter. ARGV[1]: the delta (a signed 64-bit integer, as text).
-- ARGV[2]: the TTL in milliseconds for a counter that this call creates (0: none).
-- An existing counter keeps its remaining TTL (INCRBY never touches it). A value that is
-- not an integer makes INCRBY fail before anything is written.
-- Returns the new value as a bulk string: Lua numbers are doubles, so returning the
-- INCRBY reply itself would lose precision above 2^53.
local existed = redis.call("EXISTS", KEYS[1])
redis.call("INCRBY", KEYS[1], ARGV[1])
if existed == 0 then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then
    redis.call("PEXPIRE", KEYS[1], ttl)
  end
end
return redis.call("GET", KEYS[1])
