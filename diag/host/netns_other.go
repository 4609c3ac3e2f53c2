//go:build !linux

package host

import (
	"context"
	"errors"
)

func inNetns(context.Context, string, func()) error {
	return errors.New("network namespaces exist only on Linux")
}
