package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/vnodediag/vnodediag/diag"
	"google.golang.org/protobuf/encoding/protojson"
)

func newChecks() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "checks",
		Short:   "Print the check catalog (IDs, titles, sources)",
		Example: "  vnodediag checks\n  vnodediag checks -o json | jq -r '.checks[].id'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			switch output {
			case "table":
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSOURCES\tTITLE")
				for _, c := range allChecks() {
					i := c.Info()
					fmt.Fprintf(tw, "%s\t%s\t%s\n", i.Id, strings.Join(i.Sources, ","), i.Title)
				}
				return tw.Flush()
			case "json":
				b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(diag.Catalog(allChecks()))
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(out, string(b))
				return err
			}
			return usageErr("-o %q: want table or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
