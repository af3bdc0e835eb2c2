package rediscache

// BreakerOptions configure the circuit breaker (Options.Breaker).
type BreakerOptions struct {
}

// installBreaker puts the circuit breaker in front of d's commands.
func (d *Driver) installBreaker(o BreakerOptions) {}
