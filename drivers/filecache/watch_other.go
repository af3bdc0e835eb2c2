//go:build !linux

package filecache

func newEventSource(d *Driver, w *watches) eventSource { return newPoller(d, w) }
