package app

import (
	"strings"
)

// runnerExample is the `runner` section, which the engine owns.
const runnerExample = `runner:
  checkTimeout: 30s                 # each check's deadline (--check-timeout)
  sourceTimeout: 60s                # gathering each source (--source-timeout)
  maxResultsPerCheck: 200           # the rest are summarised in one result; -1: no cap
  maxReportBytes: 8388608           # the report's size budget; -1: none
  only: []                          # like --only
  skip: []                          # like --skip
`

// Example is a complete configuration file: every section of every
// registered family, with every field and what it does, then the runner
// section. Each family brings its own section's example, so a new family
// adds its own; a test loads the result with the real loader.
func Example() string {
	var b strings.Builder
	b.WriteString(`# vnodediag configuration: one YAML document, decoded strictly.
# Every section is optional: a section left out turns its checks into SKIP,
# and the SKIP names the section. Flags override the file.
# Check a file with: vnodediag config validate -c FILE
`)
	for _, s := range Sections() {
		b.WriteString(strings.TrimRight(s.Example, "\n") + "\n")
	}
	b.WriteString(runnerExample)
	return b.String()
}
