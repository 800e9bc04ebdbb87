// Package metrics is batos's Prometheus instrumentation: one registry for
// the process, the collectors the other packages declare on it, and the
// handler that serves it in the Prometheus text format (mounted at
// /metrics by the HTTP API). It is the only package that imports
// github.com/prometheus/client_golang; the others see the small types
// below.
//
// # One registry per process
//
// The registry is created once, at package initialisation, and is not
// prometheus.DefaultRegisterer, so nothing else linked into batos adds to
// what /metrics says. Collectors are package variables of the package
// they measure, registered when it initialises: the hooks sit on hot
// paths (a commit, a method call) deep below anything that could hand
// them a registry, and a metric describes the process, as expvar does.
// Two images opened in one process (tests do) add to the same series;
// tests compare a scrape before and after what they do.
//
// # Cost
//
// A hook is one atomic add (Counter.Inc) or one bucket search and two
// atomic adds (Histogram.Observe). Label values are resolved once, when a
// package initialises, wherever the set is small and known (With returns
// a Counter to keep); a vec's With on a hot path costs a hash and a map
// lookup, so it is kept for rare events (model calls, errors).
//
// # Names
//
// Every name starts with batos_ and ends in its unit: _total for
// counters, _seconds for durations, _bytes for sizes. Label values come
// from bounded sets (states, kinds, command names); a value that is image
// data (a persona, a model) is bounded by what the image configures.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var registry = prometheus.NewRegistry()

func init() {
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
}

// Handler serves every metric of the process in the Prometheus text
// format (or the format the scraper asks for). It is safe for concurrent
// use.
func Handler() http.Handler {
	return promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
}

// Counter is a monotonic count. Its methods are safe for concurrent use.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c Counter) Inc() { c.c.Inc() }

// Add adds n, which must not be negative.
func (c Counter) Add(n float64) { c.c.Add(n) }

// Histogram counts observations in buckets. Its methods are safe for
// concurrent use.
type Histogram struct{ h prometheus.Observer }

// Observe adds a duration, in seconds.
func (h Histogram) Observe(d time.Duration) { h.h.Observe(d.Seconds()) }

// ObserveValue adds a value in the histogram's own unit.
func (h Histogram) ObserveValue(v float64) { h.h.Observe(v) }

// CounterVec is a counter per combination of label values.
type CounterVec struct{ v *prometheus.CounterVec }

// With returns the counter of the given label values, in the order the
// labels were declared, making it (at zero) on first use.
func (v *CounterVec) With(values ...string) Counter {
	return Counter{v.v.WithLabelValues(values...)}
}

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct{ v *prometheus.HistogramVec }

// With returns the histogram of the given label values, as
// CounterVec.With.
func (v *HistogramVec) With(values ...string) Histogram {
	return Histogram{v.v.WithLabelValues(values...)}
}

// NewCounter registers a counter. Like every New function here, it
// panics if name is taken or invalid: declare metrics in package
// variables, so a mistake stops every test.
func NewCounter(name, help string) Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	registry.MustRegister(c)
	return Counter{c}
}

// NewCounterVec registers a counter with labels.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	registry.MustRegister(v)
	return &CounterVec{v}
}

// NewHistogram registers a histogram with the given bucket upper bounds.
func NewHistogram(name, help string, buckets []float64) Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	registry.MustRegister(h)
	return Histogram{h}
}

// NewHistogramVec registers a histogram with labels.
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	registry.MustRegister(v)
	return &HistogramVec{v}
}

// Buckets are n bucket upper bounds from min, each factor times the one
// before.
func Buckets(min, factor float64, n int) []float64 {
	return prometheus.ExponentialBuckets(min, factor, n)
}

// Shared bucket layouts, in seconds.
var (
	// FastSeconds spans 10µs to about 23s (×2.5 a step): commits, fsyncs,
	// sends, method calls.
	FastSeconds = Buckets(10e-6, 2.5, 17)
	// SlowSeconds spans 10ms to about 22 minutes (×2 a step): model
	// calls, cycle states, whole cycles.
	SlowSeconds = Buckets(0.01, 2, 18)
)
