package bench

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
)

// BenchmarkRedisLockSteps takes cachekit's Redis lock apart, one layer per step, all
// taking turns in one benchmark (see interleave) so that the differences between steps
// are paired measurements:
//
//	floor          SET NX EX + DEL through go-redis
//	set-cad        SET NX EX + EVALSHA of the classic compare-and-delete script (GET,
//	               DEL: the release of bsm/redislock and redsync), through go-redis
//	set-cad-pub    the same with rediscache's own script (GET, DEL, PUBLISH to wake
//	               waiters), read from drivers/rediscache/lua, through go-redis
//	driver         rediscache.Driver.SetIf + CompareAndDelete, the token encoded once:
//	               the same commands, plus the driver's code
//	acquire        cache.Acquire + LockHandle.Release: plus the manager's code
//	lock           cache.Lock with an empty fn: plus fn's context and Lock's checks
//
// Each step's time minus the previous one's is what that layer costs.
func BenchmarkRedisLockSteps(b *testing.B) {
	src, err := os.ReadFile("../drivers/rediscache/lua/compare_and_delete.lua")
	if err != nil {
		b.Fatal(err)
	}
	classic := redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
	ours := redis.NewScript(string(src))
	token := `"` + floorToken + `"` // what the manager stores: the token as JSON
	setCAD := func(rdb *redis.Client, s *redis.Script, key string) func() error {
		return func() error {
			if err := rdb.SetArgs(ctx, key, token, redis.SetArgs{Mode: "NX", TTL: lockTTL}).Err(); err != nil {
				return err
			}
			n, err := s.Run(ctx, rdb, []string{key}, token).Int64()
			if err == nil && n != 1 {
				err = errMiss
			}
			return err
		}
	}
	floor := newLocker(b, "floor")
	d, err := rediscache.New(rediscache.Options{Client: newRedisClient(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	dkey := redisScope + "steps.driver"
	e := driver.Entry{Key: dkey, Value: []byte(token), TTL: lockTTL, NoSlide: true}
	acquire, lock := newLocker(b, "cachekit-acquire"), newLocker(b, "cachekit")
	b.ReportAllocs()
	interleave(b, []timedOp{
		{"floor", func() error { return floor(ctx, redisScope+"steps.floor") }},
		{"set-cad", setCAD(newRedisClient(b), classic, redisScope+"steps.set-cad")},
		{"set-cad-pub", setCAD(newRedisClient(b), ours, redisScope+"steps.set-cad-pub")},
		{"driver", func() error {
			if ok, err := d.SetIf(ctx, e, driver.IfAbsent); !ok || err != nil {
				return orMiss(err)
			}
			if ok, err := d.CompareAndDelete(ctx, dkey, e.Value); !ok || err != nil {
				return orMiss(err)
			}
			return nil
		}},
		{"acquire", func() error { return acquire(ctx, redisScope+"steps.acquire") }},
		{"lock", func() error { return lock(ctx, redisScope+"steps.lock") }},
	})
}

func orMiss(err error) error {
	if err == nil {
		return errMiss
	}
	return err
}
