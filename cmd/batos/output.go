package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
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

// terminalSafe is text a model or a user wrote, made safe to print: line
// breaks and tabs are kept, every other control character (an escape
// sequence would restyle or rewrite the terminal) is shown escaped.
func terminalSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// safeOut writes through w what terminalSafe makes of it: for output
// that quotes a model's answers (an audit, a proposal).
func safeOut(w io.Writer) io.Writer { return terminalWriter{w} }

type terminalWriter struct{ w io.Writer }

func (t terminalWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(t.w, terminalSafe(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
