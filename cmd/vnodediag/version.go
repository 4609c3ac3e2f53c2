package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/diag"
)

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the vnodediag version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "vnodediag %s (%s, %s/%s)\n", diag.BuildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
