package filecache_test

func runHelper() bool { return false }
