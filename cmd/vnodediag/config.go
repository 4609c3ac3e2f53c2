package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
)

func newConfig() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print an example configuration, or validate one",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a complete, commented configuration file (every section, every field)",
		Example: `  vnodediag config example > vnodediag.yaml
  vnodediag config validate -c vnodediag.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), app.Example())
			return err
		},
	})
	var path string
	validate := &cobra.Command{
		Use:   "validate -c FILE",
		Short: "Validate a configuration file as diagnose and serve read it (no network access)",
		Long: `Validate a configuration file as diagnose and serve read it: strict decoding,
every section's settings, and the runner's. Nothing is contacted. Exit 0 when
the file is valid, 64 with every problem named (section, field, line) when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return usageErr("config validate: want -c FILE")
			}
			cfg, err := app.Load(path, app.Overrides{})
			if err != nil {
				return usageErr("%v", err)
			}
			var set, left []string
			for _, s := range app.Sections() {
				if cfg.Section(s.Key) != nil {
					set = append(set, s.Key)
				} else {
					left = append(left, s.Key)
				}
			}
			msg := fmt.Sprintf("config %s: valid; sections: %s", path, strings.Join(set, ", "))
			if len(left) > 0 {
				msg += fmt.Sprintf("; left out (their checks SKIP): %s", strings.Join(left, ", "))
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
	validate.Flags().StringVarP(&path, "config", "c", "", "configuration file to validate")
	cmd.AddCommand(validate)
	return cmd
}
