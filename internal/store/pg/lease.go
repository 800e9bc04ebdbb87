package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"batos/internal/store"
)

var _ store.Leaser = (*DB)(nil)

// maxLeaseName bounds a lease's name and holder: they are keys, not data.
const maxLeaseName = 256

func checkLease(name, holder string, ttl time.Duration) error {
	switch {
	case name == "" || len(name) > maxLeaseName:
		return fmt.Errorf("pg: lease name %q: want 1 to %d bytes", name, maxLeaseName)
	case holder == "" || len(holder) > maxLeaseName:
		return fmt.Errorf("pg: lease holder %q: want 1 to %d bytes", holder, maxLeaseName)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return fmt.Errorf("pg: lease name %q: want UTF-8 without NUL (a text column)", name)
	case !utf8.ValidString(holder) || strings.ContainsRune(holder, 0):
		return fmt.Errorf("pg: lease holder %q: want UTF-8 without NUL (a text column)", holder)
	case ttl < time.Millisecond:
		return fmt.Errorf("pg: lease %s: a time to live of %s is too short", name, ttl)
	}
	return nil
}

// AcquireLease implements store.Leaser. One statement decides it, so two
// nodes asking at once cannot both be granted: the row lock of the
// upsert orders them, and the second finds the first's unexpired lease.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return store.Lease{}, false, err
	}
	done, err := db.enter()
	if err != nil {
		return store.Lease{}, false, err
	}
	defer done()
	var gen int64
	err = db.pool.QueryRow(ctx, `
INSERT INTO lease AS l (name, holder, generation, expires)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE
	SET holder = EXCLUDED.holder,
	    generation = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > clock_timestamp()
	                      THEN l.generation ELSE l.generation + 1 END,
	    expires = EXCLUDED.expires
	WHERE l.holder = EXCLUDED.holder OR l.expires <= clock_timestamp()
RETURNING generation`, name, holder, ttl.Microseconds()).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, false, nil // another holder's, unexpired
	}
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("pg: acquire lease %s: %w", name, err)
	}
	return store.Lease{Name: name, Holder: holder, Generation: gen}, true, nil
}

// RenewLease implements store.Leaser. A lease that expired is renewed
// still if no one took it meanwhile: the holder's right never passed to
// anyone, so nothing it does next can clash.
func (db *DB) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (bool, error) {
	if err := checkLease(l.Name, l.Holder, ttl); err != nil {
		return false, err
	}
	done, err := db.enter()
	if err != nil {
		return false, err
	}
	defer done()
	tag, err := db.pool.Exec(ctx, `
UPDATE lease SET expires = clock_timestamp() + $4 * interval '1 microsecond'
WHERE name = $1 AND holder = $2 AND generation = $3`, l.Name, l.Holder, l.Generation, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("pg: renew lease %s: %w", l.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease implements store.Leaser. The row stays, expired and with
// no holder (so the former one cannot renew it), and the generation
// keeps growing for the next holder.
func (db *DB) ReleaseLease(ctx context.Context, l store.Lease) error {
	done, err := db.enter()
	if err != nil {
		return err
	}
	defer done()
	_, err = db.pool.Exec(ctx, `
UPDATE lease SET holder = '', expires = '-infinity'
WHERE name = $1 AND holder = $2 AND generation = $3`, l.Name, l.Holder, l.Generation)
	if err != nil {
		return fmt.Errorf("pg: release lease %s: %w", l.Name, err)
	}
	return nil
}
