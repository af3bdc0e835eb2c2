-- Create-if-absent with a fencing number, in one atomic step.
-- KEYS[1]: the key. KEYS[2]: its fencing counter, a key of its own that never expires and
-- that the driver places in KEYS[1]'s Cluster hash slot.
-- ARGV[1]: the value. ARGV[2]: the TTL in milliseconds (0: no expiry).
-- When KEYS[1] is absent, increments KEYS[2], writes KEYS[1] and returns the new count
-- (>= 1); otherwise returns 0 and changes nothing. The INCR comes before the SET so that
-- a counter that is not an integer fails the script before anything is written.
if redis.call("EXISTS", KEYS[1]) == 1 then
  return 0
end
local fence = redis.call("INCR", KEYS[2])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ttl)
else
  redis.call("SET", KEYS[1], ARGV[1])
end
return fence
