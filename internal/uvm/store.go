package uvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"batos/internal/store"
	"batos/internal/store/bolt"
	"batos/internal/store/pg"
)

// IsDatabase reports whether an image's name is a PostgreSQL URL
// (postgres:// or postgresql://) rather than a file's path.
func IsDatabase(name string) bool {
	return strings.HasPrefix(name, "postgres://") || strings.HasPrefix(name, "postgresql://")
}

// DisplayName is an image's name as messages show it: a database URL
// without its password.
func DisplayName(name string) string {
	if !IsDatabase(name) {
		return name
	}
	u, err := url.Parse(name)
	if err != nil {
		return "postgres://…" // unparsable: nothing of it is shown
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	// libpq takes secrets as parameters too.
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenStore opens the store an image's name names: a PostgreSQL
// database for a URL, else the file at the path (bolt, with o). o is a
// file's: a database is read without locking anyone out (read-only use
// is the caller's, who then writes nothing), and checks its own pages.
// existing refuses a database that holds no image, rather than creating
// one there.
func OpenStore(ctx context.Context, name string, o *bolt.Options, existing bool) (store.Engine, error) {
	if !IsDatabase(name) {
		return bolt.Open(name, o)
	}
	db, err := pg.Open(ctx, name, &pg.Options{Existing: existing})
	if errors.Is(err, pg.ErrNoImage) {
		return nil, fmt.Errorf("no image in %s (create one with: batos -store URL image init)", DisplayName(name))
	}
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", DisplayName(name), err)
	}
	return db, nil
}

// compacter is a store whose file compaction batos runs (bolt's); a
// database reclaims its own space.
type compacter interface {
	Compact(ctx context.Context) (store.CompactResult, error)
}

// DataDir is where an image keeps what is derived from it on this
// machine (the catalog's indexes): beside an image file, or, for a
// database, in the user's cache directory under a name made from the
// database's URL (its password left out).
func DataDir(name, suffix string) string {
	if !IsDatabase(name) {
		return name + suffix
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(DisplayName(name)))
	return filepath.Join(base, "batos", "pg-"+hex.EncodeToString(sum[:8])+suffix)
}

// maxIndexDirs bounds the catalog index directories kept for one database
// on one machine: one per node running there at once.
const maxIndexDirs = 16

// claimIndexDir gives this process a catalog index directory of its own
// for the image at name. An image file's is beside it (the file's lock
// keeps a second process out). A database's nodes share no lock, so each
// takes the first of dir, dir-2, dir-3… whose lock file it can lock: a
// node restarted finds its indexes where it left them, and two nodes on
// one machine never write one directory. The returned file holds the
// lock until closed.
func claimIndexDir(name string) (string, *os.File, error) {
	dir := IndexDir(name)
	if !IsDatabase(name) {
		return dir, nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", nil, err
	}
	for n := 1; n <= maxIndexDirs; n++ {
		d := dir
		if n > 1 {
			d = fmt.Sprintf("%s-%d", dir, n)
		}
		f, err := os.OpenFile(d+".lock", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return "", nil, err
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return d, f, nil
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return "", nil, fmt.Errorf("lock %s: %w", d, err)
		}
	}
	return "", nil, fmt.Errorf("%d batos processes on this machine use %s's catalog indexes already", maxIndexDirs, DisplayName(name))
}
