package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"batos/internal/metrics"
	"batos/internal/metrics/metricstest"
)

var (
	testCount = metrics.NewCounterVec("batos_metrics_test_events_total", "Events of the metrics package's test.", "kind")
	testTime  = metrics.NewHistogram("batos_metrics_test_duration_seconds", "Durations of the metrics package's test.", metrics.FastSeconds)
)

func TestScrape(t *testing.T) {
	before := metricstest.Take(t)
	a := testCount.With("a")
	a.Inc()
	a.Add(2)
	testCount.With("b").Inc()
	testTime.Observe(3 * time.Millisecond)
	testTime.Observe(time.Second)
	d := metricstest.Take(t).Sub(before)
	for series, want := range map[string]float64{
		`batos_metrics_test_events_total{kind="a"}`:              3,
		`batos_metrics_test_events_total{kind="b"}`:              1,
		`batos_metrics_test_duration_seconds_count`:              2,
		`batos_metrics_test_duration_seconds_sum`:                1.003,
		`batos_metrics_test_duration_seconds_bucket{le="+Inf"}`:  2,
		`batos_metrics_test_duration_seconds_bucket{le="1e-05"}`: 0,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	if got := d.Sum("batos_metrics_test_events_total"); got != 4 {
		t.Errorf("events moved by %v, want 4", got)
	}
}

func TestHandlerServesRuntimeMetrics(t *testing.T) {
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !strings.Contains(string(body), "\n"+name+" ") {
			t.Errorf("no %s in the scrape", name)
		}
	}
}

func TestBuckets(t *testing.T) {
	if n := len(metrics.FastSeconds); metrics.FastSeconds[0] > 100e-6 || metrics.FastSeconds[n-1] < 10 {
		t.Errorf("FastSeconds spans %v to %v, want at least 100µs to 10s", metrics.FastSeconds[0], metrics.FastSeconds[n-1])
	}
}

// BenchmarkHooks measures what a hot-path hook costs: a resolved
// counter's Inc, a histogram's Observe, and the two together (a method
// call's hook).
func BenchmarkHooks(b *testing.B) {
	c := testCount.With("bench")
	b.Run("Counter.Inc", func(b *testing.B) {
		for b.Loop() {
			c.Inc()
		}
	})
	b.Run("Histogram.Observe", func(b *testing.B) {
		for b.Loop() {
			testTime.Observe(37 * time.Microsecond)
		}
	})
	b.Run("both", func(b *testing.B) {
		for b.Loop() {
			testTime.Observe(37 * time.Microsecond)
			c.Inc()
		}
	})
	b.Run("CounterVec.With", func(b *testing.B) {
		for b.Loop() {
			testCount.With("bench").Inc()
		}
	})
}
