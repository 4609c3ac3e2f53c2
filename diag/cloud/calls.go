package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits of the caller.
const (
	// maxInFlight bounds concurrent requests of one source.
	maxInFlight = 16
	// maxAttempts bounds the tries of one request under throttling.
	maxAttempts = 6
	// backoffBase doubles per retry (with jitter), up to backoffMax.
	backoffBase = 200 * time.Millisecond
	backoffMax  = 3 * time.Second
)

// caller sends every request of a run: it waits for the rate limiter and a
// concurrency slot, bounds each try by the request timeout (and the run's
// context), and retries throttling and transient server errors with
// exponential backoff while the deadline leaves room. Errors leave it
// without secrets.
type caller struct {
	limiter *rate.Limiter
	slots   chan struct{}
	timeout time.Duration
	cred    *resolved
	log     *slog.Logger
	calls   atomic.Int64
}

func newCaller(lim *rate.Limiter, timeout time.Duration, cred *resolved, log *slog.Logger) *caller {
	return &caller{limiter: lim, slots: make(chan struct{}, maxInFlight), timeout: timeout, cred: cred, log: log}
}

// do runs f for action until it succeeds, fails for good, or the context
// ends.
func (c *caller) do(ctx context.Context, action string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := c.try(ctx, f)
		if err == nil {
			return nil
		}
		err = c.clean(err)
		if !isThrottle(err) || attempt == maxAttempts {
			if isThrottle(err) {
				return fmt.Errorf("%w (still throttled after %d tries)", err, attempt)
			}
			return err
		}
		d := backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d+c.timeout/10 {
			return fmt.Errorf("%w (throttled; no time left to retry before the deadline)", err)
		}
		c.log.Debug("cloud api throttled, retrying", "action", action, "attempt", attempt, "backoff", d, "error", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (then: %w)", err, ctx.Err())
		}
	}
}

func (c *caller) try(ctx context.Context, f func(context.Context) error) error {
	if err := c.limiter.Wait(ctx); err != nil {
		// Wait fails at once when the next slot is past the deadline.
		return fmt.Errorf("rate limit: %w", context.DeadlineExceeded)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.slots }()
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.calls.Add(1)
	err := f(cctx)
	var ne net.Error
	if err != nil && ctx.Err() == nil && (cctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w (request timeout %s)", err, c.timeout)
	}
	return err
}

// clean removes the credential from an error's text, keeping an *APIError
// an *APIError so that callers can still classify it.
func (c *caller) clean(err error) error {
	var e *APIError
	if errors.As(err, &e) {
		e.Message = c.cred.redact(e.Message)
		return e
	}
	return redactedError{msg: c.cred.redact(err.Error()), err: err}
}

// redactedError prints without secrets and unwraps to the original (for
// errors.Is on context errors).
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }

func (e redactedError) Unwrap() error { return e.err }

func backoff(attempt int) time.Duration {
	d := min(backoffMax, backoffBase<<(attempt-1))
	// Full jitter on the upper half, so that parallel chains spread out.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// pagesByNumber reads a PageNumber/PageSize list until it has TotalCount
// items or a page comes back empty.
func pagesByNumber[T any](ctx context.Context, c *caller, action string, fetch func(ctx context.Context, number int) ([]T, int, error)) ([]T, error) {
	var all []T
	for n := 1; n <= maxPages; n++ {
		var items []T
		var total int
		err := c.do(ctx, action, func(ctx context.Context) error {
			var err error
			items, total, err = fetch(ctx, n)
			return err
		})
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if len(items) == 0 || len(all) >= total {
			return all, nil
		}
	}
	return all, fmt.Errorf("%s: more than %d pages; stopped", action, maxPages)
}

// pagesByToken reads a NextToken list until the token comes back empty. A
// token seen twice is an error rather than a loop.
func pagesByToken[T any](ctx context.Context, c *caller, action string, fetch func(ctx context.Context, token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	seen := map[string]bool{}
	for range maxPages {
		var items []T
		var next string
		err := c.do(ctx, action, func(ctx context.Context) error {
			var err error
			items, next, err = fetch(ctx, token)
			return err
		})
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		if seen[next] {
			return all, fmt.Errorf("%s: the server repeated NextToken; paging stopped after %d items", action, len(all))
		}
		seen[next] = true
		token = next
	}
	return all, fmt.Errorf("%s: more than %d pages; stopped", action, maxPages)
}
