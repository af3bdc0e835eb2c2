package driver

// BreakerNotifier is implemented by drivers with a circuit breaker: a breaker that
// opens when the store does not answer (the driver's calls then fail at once) and
// closes when it answers again. The manager (package cache) calls OnBreaker once per
// cache that registers the driver, and turns each call of fn into a "breaker.opened" or
// "breaker.closed" event and into the breaker's state in the metrics.
//
// fn is called once per change of the breaker's state (never twice in a row with the
// same value), from the driver's own goroutine: fn must be quick and must not call the
// driver.
type BreakerNotifier interface {
	// OnBreaker adds fn to the functions called when the breaker opens (open true) or
	// closes (open false).
	OnBreaker(fn func(open bool))
}
