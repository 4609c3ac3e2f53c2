package host

import (
	"context"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs read on a thread that has entered the network namespace at
// nsPath: /proc/sys/net shows the namespace of the thread reading it. The
// thread stays locked and ends with its goroutine, so no other goroutine
// ever runs in that namespace.
func inNetns(ctx context.Context, nsPath string, read func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the runtime ends a thread whose goroutine
		// exits while locked, taking the namespace with it.
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		read()
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
