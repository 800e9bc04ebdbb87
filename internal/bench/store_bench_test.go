package bench

import (
	"bufio"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/metrics"
	"batos/internal/store"
)

// BenchmarkWriters is bench store's durable writers alone, 1 and 8 of
// them, each transaction bumping 10 objects of the writer's own: go test
// -bench Writers -cpuprofile/-memprofile profiles the commit path.
func BenchmarkWriters(b *testing.B) {
	ctx := b.Context()
	db, err := openBenchImage(ctx, filepath.Join(b.TempDir(), "tx.db"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var oids []store.OID
	err = db.Update(ctx, func(tx *image.Tx) error {
		oids, err = addLinked(tx, benchPopulationSlot, 0, fullBench.Population, fullBench.Fanout)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, writers := range []int{1, 8} {
		b.Run(map[int]string{1: "1", 8: "8"}[writers], func(b *testing.B) {
			sb := &storeBencher{sizes: fullBench, log: io.Discard}
			sb.sizes.Txs = b.N
			b.ReportAllocs()
			b.ResetTimer()
			before, cpu := walFsyncs(b), processCPU()
			if _, _, err := sb.throughput(ctx, db.DB, oids, writers); err != nil {
				b.Fatal(err)
			}
			after := walFsyncs(b)
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			if n := after[0] - before[0]; n > 0 {
				b.ReportMetric(float64(b.N)/n, "commits/fsync")
				b.ReportMetric((after[1]-before[1])/n*1e6, "µs/fsync")
			}
		})
	}
}

// walFsyncs scrapes the log's fsync count and seconds from the metrics.
func walFsyncs(b *testing.B) [2]float64 {
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out [2]float64
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "batos_store_wal_fsync_duration_seconds_count":
			out[0] = v
		case "batos_store_wal_fsync_duration_seconds_sum":
			out[1] = v
		}
	}
	return out
}
