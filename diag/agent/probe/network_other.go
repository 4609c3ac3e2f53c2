//go:build !linux

package probe

import (
	"errors"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// readRoutes is Linux only: ECI pods run Linux.
func readRoutes() ([]*pb.NetRoute, error) {
	return nil, errors.New("not supported on this OS")
}
