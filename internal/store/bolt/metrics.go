package bolt

import (
	"errors"
	"time"

	"batos/internal/metrics"
	"batos/internal/store"
)

// The store's metrics, resolved once: a commit costs three atomic adds
// and a bucket search more.
var (
	commitsMetric = metrics.NewCounterVec("batos_store_commits_total",
		"Commits (undos included) the bolt store answered, by outcome: ok, conflict (a write based on a revision no longer current), error.",
		"outcome")
	commitsOK       = commitsMetric.With("ok")
	commitsConflict = commitsMetric.With("conflict")
	commitsError    = commitsMetric.With("error")
	commitSeconds   = metrics.NewHistogram("batos_store_commit_duration_seconds",
		"Time from a commit's submission to its answer (queueing, grouping, the write-ahead log's fdatasync), of commits that succeeded.",
		metrics.FastSeconds)
	fsyncSeconds = metrics.NewHistogram("batos_store_wal_fsync_duration_seconds",
		"Time of one fdatasync of the write-ahead log; one covers every commit group written before it.",
		metrics.FastSeconds)
	groupCommits = metrics.NewHistogram("batos_store_wal_fsync_commits",
		"Commits made durable by one fdatasync of the write-ahead log (group commit).",
		metrics.Buckets(1, 2, 10))
)

// observeCommit counts a commit submitted at start that ended with err.
func observeCommit(start time.Time, err error) {
	switch {
	case err == nil:
		commitsOK.Inc()
		commitSeconds.Observe(time.Since(start))
	case errors.Is(err, store.ErrConflict):
		commitsConflict.Inc()
	default:
		commitsError.Inc()
	}
}
