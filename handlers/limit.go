package handlers

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxLimitedAddrs bounds an addrLimiter's table of addresses.
const maxLimitedAddrs = 10000

// addrLimiter rate-limits something per client address: a burst, then one
// every `every`. It runs on the clock it is given, so that tests can hold
// time still. The failed authentications and the citizens' lookups each
// have one.
type addrLimiter struct {
	every time.Duration

	// limited counts the table's addresses, so that while no address has
	// spent anything (the failure limit's usual state) ready takes no lock.
	limited atomic.Int64

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

// ready reports whether addr may go ahead at now, without spending
// anything.
func (a *addrLimiter) ready(addr string, now time.Time) bool {
	if a.limited.Load() == 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.addrs[addr]
	return l == nil || l.TokensAt(now) >= 1
}

// take spends one of addr's burst at now: 0 when it may go ahead, else how
// long until it may (and nothing is spent).
func (a *addrLimiter) take(addr string, now time.Time, burst int) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.addrs[addr]
	if l == nil {
		if a.addrs == nil || len(a.addrs) >= maxLimitedAddrs {
			a.prune(now, burst)
		}
		l = rate.NewLimiter(rate.Every(a.every), burst)
		a.addrs[addr] = l
		a.limited.Store(int64(len(a.addrs)))
	}
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// prune forgets the addresses whose burst has grown back whole (they are
// as new); if that frees nothing, it starts afresh rather than grow
// without limit under a spread attack.
func (a *addrLimiter) prune(now time.Time, burst int) {
	for addr, l := range a.addrs {
		if l.TokensAt(now) >= float64(burst) {
			delete(a.addrs, addr)
		}
	}
	if a.addrs == nil || len(a.addrs) >= maxLimitedAddrs {
		a.addrs = map[string]*rate.Limiter{}
	}
	a.limited.Store(int64(len(a.addrs)))
}
