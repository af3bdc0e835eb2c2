-- Compare-and-PEXPIRE: the renewal of a lock.
-- KEYS[1]: the key. ARGV[1]: the value it must hold (the lock token). ARGV[2]: the new TTL
-- in milliseconds (> 0).
-- Sets the TTL only while KEYS[1] holds exactly ARGV[1]; returns 1 if it did, else 0.
local ok, cur = pcall(redis.call, "GET", KEYS[1])
if ok and cur == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
