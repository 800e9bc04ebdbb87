package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// jsonFlag adds the -json flag every listing command has.
func jsonFlag(fs interface {
	Bool(string, bool, string) *bool
}) *bool {
	return fs.Bool("json", false, "print JSON instead of text")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func formatTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05.000") }
