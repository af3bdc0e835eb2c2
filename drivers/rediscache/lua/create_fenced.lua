-- Create-if-absent with a fencing number, in one atomic step.
-- KEYS[1]: the key. KEYS[2]: its fencing counter, a key of its own that never expires and
-- that the driver places in KEYS[1]'s Cluster hash slot.
-- ARGV[1]: the value. ARGV[2]: the TTL in milliseconds (0: no expiry).
-- When KEYS[1] is absent, sets KEYS[2] to max(KEYS[2] + 1, the server's time in
-- microseconds since the Unix epoch), writes KEYS[1], and returns the new KEYS[2] (as a
-- bulk string, exact whatever its size); otherwise returns 0 and changes nothing.
-- The time makes the numbers keep growing when the counter is lost (a restart without
-- persistence, a failover to a replica that lagged, a flush), as long as the server's
-- clock moves forward. The INCR comes before the SET so that a counter that is not an
-- integer fails the script before anything is written.
if redis.call("EXISTS", KEYS[1]) == 1 then
  return 0
end
local fence = redis.call("INCR", KEYS[2])
local t = redis.call("TIME")
-- Seconds and microseconds joined as text: no floating point on the way.
local now = t[1] .. string.rep("0", 6 - string.len(t[2])) .. t[2]
if fence < tonumber(now) then
  redis.call("SET", KEYS[2], now)
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ttl)
else
  redis.call("SET", KEYS[1], ARGV[1])
end
return redis.call("GET", KEYS[2])
