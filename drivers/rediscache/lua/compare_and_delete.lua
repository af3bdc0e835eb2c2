-- Compare-and-delete: the release of a lock.
-- KEYS[1]: the key. ARGV[1]: the value the caller expects it to hold (the lock token).
-- Deletes KEYS[1] only while it holds exactly ARGV[1], and returns 1 if it deleted, else 0.
-- A missing key, another value, or a key that is not a string (GET fails on it) is 0: the
-- key is never touched unless it is the caller's.
local ok, cur = pcall(redis.call, "GET", KEYS[1])
if ok and cur == ARGV[1] then
  redis.call("DEL", KEYS[1])
  -- Wake the key's waiters (Driver.Watch) at once.
  redis.call("PUBLISH", KEYS[1] .. ":released", "")
  return 1
end
return 0
