package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestLockClientIsTheSameDatabase: Extend and CompareAndDelete run on the driver's own
// fail-fast client,
// built from the options of the client it was given; it must reach the same server and
// database (here database 5, with RESP3, go-redis's default), so that renewing a key
// written through the caller's client works. TestMain fails the run if building that
// second client made go-redis log a setup failure (it used to: the copied options
// shared the first client's push-notification handlers).
func TestLockClientIsTheSameDatabase(t *testing.T) {
	opt, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.DB = 5
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	d := newDriver(t, rediscache.Options{Client: rdb})
	ctx := context.Background()
	key := scope("renew")
	if err := rdb.Set(ctx, key, "tok", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(ctx, key) })
	ok, err := d.Extend(ctx, key, []byte("tok"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("Extend of a key in database 5: ok %v, err %v; want true, nil", ok, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 59*time.Minute {
		t.Fatalf("TTL after Extend(1h): %v", ttl)
	}
	if ok, err := d.Extend(ctx, key, []byte("other"), time.Hour); err != nil || ok {
		t.Fatalf("Extend with another token: ok %v, err %v; want false, nil", ok, err)
	}
	if ok, err := d.CompareAndDelete(ctx, key, []byte("tok")); err != nil || !ok {
		t.Fatalf("CompareAndDelete of a key in database 5: ok %v, err %v; want true, nil", ok, err)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatalf("the key is still there after CompareAndDelete")
	}
}
