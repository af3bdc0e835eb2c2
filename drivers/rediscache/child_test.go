package rediscache_test

const childEnv = "REDISCACHE_TEST_CHILD"

func childMain() int { return 2 }
