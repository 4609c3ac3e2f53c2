package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
)

// checksFormats are the accepted values of `checks -o`.
var checksFormats = []string{"table", "yaml", "json"}

func newChecks() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "checks",
		Short:   "Print the check catalog (IDs, titles, sources)",
		Example: "  vnodediag checks\n  vnodediag checks -o json | jq -r '.checks[].id'\n  vnodediag checks -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			switch output {
			case "table":
				// On a terminal, titles are cut to its width rather than
				// wrapped under the next row's ID.
				width := 0
				if isTerminal(out) {
					width = terminalWidth(out)
				}
				idW, srcW := len("ID"), len("SOURCES")
				for _, c := range allChecks() {
					i := c.Info()
					idW, srcW = max(idW, len(i.Id)), max(srcW, len(strings.Join(i.Sources, ",")))
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSOURCES\tTITLE")
				for _, c := range allChecks() {
					i := c.Info()
					fmt.Fprintf(tw, "%s\t%s\t%s\n", i.Id, strings.Join(i.Sources, ","), cut(i.Title, width-idW-srcW-4))
				}
				return tw.Flush()
			case "json", "yaml":
				b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(diag.Catalog(allChecks()))
				if err != nil {
					return err
				}
				if output == "yaml" {
					if b, err = yaml.JSONToYAML(b); err != nil {
						return err
					}
					_, err = out.Write(b)
					return err
				}
				_, err = fmt.Fprintln(out, string(b))
				return err
			}
			return usageErr("-o %q: want one of %s", output, strings.Join(checksFormats, ", "))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(checksFormats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(checksFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// cut shortens s to n columns with an ellipsis; n <= 0 (not a terminal)
// or too narrow to be worth it leaves s whole.
func cut(s string, n int) string {
	if n < 12 || utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
