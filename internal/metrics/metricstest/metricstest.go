// Package metricstest scrapes batos's metrics for tests: what a
// Prometheus server would read from metrics.Handler, as numbers by series.
package metricstest

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"batos/internal/metrics"
)

// Scrape is one reading of every series: its value by its name and
// labels as the text format writes them (`batos_x_total{kind="a"}`).
type Scrape map[string]float64

// Take scrapes metrics.Handler through HTTP, in the text format.
func Take(tb testing.TB) Scrape {
	tb.Helper()
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape: got status %s, want 200", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("scrape: got Content-Type %q, want text/plain", ct)
	}
	s := Scrape{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// A label value may hold spaces; the value follows the last one.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			tb.Fatalf("scrape: unreadable line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("scrape: line %q: %v", line, err)
		}
		s[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	return s
}

// Sub is what each series of s gained since before (a series before
// lacks counts from zero); series that did not move are left out.
func (s Scrape) Sub(before Scrape) Scrape {
	d := Scrape{}
	for k, v := range s {
		if dv := v - before[k]; dv != 0 {
			d[k] = dv
		}
	}
	return d
}

// Sum adds the values of the series whose name is name and whose labels
// include every one of labels (`kind="a"`), such as a histogram's
// _count over all its label values.
func (s Scrape) Sum(name string, labels ...string) float64 {
	var sum float64
	for k, v := range s {
		series, rest, _ := strings.Cut(k, "{")
		if series != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}
