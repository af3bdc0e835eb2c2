-- Compare-and-swap.
-- KEYS[1]: the key. ARGV[1]: the value it must hold. ARGV[2]: the new value.
-- ARGV[3]: the new TTL in milliseconds (0: no expiry; -1: keep the remaining TTL).
-- Writes ARGV[2] only while KEYS[1] holds exactly ARGV[1]; returns 1 if it wrote, else 0.
local ok, cur = pcall(redis.call, "GET", KEYS[1])
if not ok or cur ~= ARGV[1] then
  return 0
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call("SET", KEYS[1], ARGV[2], "PX", ttl)
elseif ttl < 0 then
  redis.call("SET", KEYS[1], ARGV[2], "KEEPTTL")
else
  redis.call("SET", KEYS[1], ARGV[2])
end
-- Wake the key's waiters (Driver.Watch) at once.
redis.call("PUBLISH", KEYS[1] .. ":released", "")
return 1
