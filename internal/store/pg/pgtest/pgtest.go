// Package pgtest runs a throwaway PostgreSQL cluster for a test package:
// initdb into a temporary directory, a server on a unix socket in it and
// a free TCP port on 127.0.0.1, and a fresh database for each test. It is
// for tests only; shipped code must not import it.
//
// A test package uses it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and gets a database with NewDatabase(t). The cluster starts on first
// use, so a package whose selected tests need none starts nothing, and is
// stopped and removed when the tests end.
//
// A test that stops or restarts the server (to see what clients do while
// it is down) takes a cluster of its own with StartOwn, so the package's
// other tests, on the shared cluster, never notice.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installHint is how to get the binaries on the Debian machines batos is
// built on (make test installs it).
const installHint = "install PostgreSQL: apt-get install postgresql"

// superuser is the cluster's superuser role, the same whoever runs it.
const superuser = "postgres"

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir     string // temporary directory: data/, the socket, the log
	bin     string // directory holding initdb, pg_ctl and postgres
	port    int
	opts    string     // the server's options (pg_ctl -o), the same at every start
	asUser  *user.User // set when running as root: the server runs as postgres
	dbCount atomic.Int64
}

var (
	once       sync.Once
	cluster    *Cluster
	clusterErr error
	stopped    atomic.Bool
)

// Main runs the package's tests, then stops and removes the cluster if a
// test started it. Use it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	stopped.Store(true)
	if cluster != nil {
		if err := cluster.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Start returns the package's cluster, starting it on first use. A
// missing binary fails the test with the command that installs it.
func Start(t testing.TB) *Cluster {
	t.Helper()
	if stopped.Load() {
		t.Fatal("pgtest: the cluster was already stopped (pgtest.Main has returned)")
	}
	once.Do(func() { cluster, clusterErr = start() })
	if clusterErr != nil {
		t.Fatalf("pgtest: %v", clusterErr)
	}
	return cluster
}

// StartOwn starts a cluster for the test alone, stopped and removed when
// the test ends: for a test that restarts the server (Restart), which the
// shared cluster's other tests must not see.
func StartOwn(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// Restart stops the server as pg_ctl restart -m fast does (every session
// is ended, each open transaction rolled back), keeps it down for down
// (0: at once), and starts it again on the same port, returning once it
// accepts connections. Use it on a cluster of the test's own (StartOwn).
func (c *Cluster) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	c.restart(t, "fast", down)
}

// CrashRestart is Restart with the server stopped as a crash would stop
// it (pg_ctl stop -m immediate): every process ends at once, and the
// next start recovers from the write-ahead log.
func (c *Cluster) CrashRestart(t testing.TB, down time.Duration) {
	t.Helper()
	c.restart(t, "immediate", down)
}

func (c *Cluster) restart(t testing.TB, mode string, down time.Duration) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("pgtest: pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	time.Sleep(down)
	if out, err := c.pgStart(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Fatalf("pgtest: pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
	}
}

// NewDatabase creates an empty database for the test and returns its URL
// over the unix socket.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := Start(t)
	return c.URL(c.CreateDatabase(t))
}

// CreateDatabase creates an empty database, named after the test, and
// returns its name.
func (c *Cluster) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := c.databaseName(t.Name())
	if err := c.createDatabase(name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return name
}

// URL is the connection URL of a database of the cluster, over the unix
// socket.
func (c *Cluster) URL(database string) string {
	q := url.Values{"host": {c.dir}, "port": {strconv.Itoa(c.port)}, "user": {superuser}, "sslmode": {"disable"}}
	return "postgres:///" + url.PathEscape(database) + "?" + q.Encode()
}

// TCPURL is the connection URL of a database of the cluster over TCP, as
// a node on another machine would connect.
func (c *Cluster) TCPURL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, c.port, url.PathEscape(database))
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName makes a unique, valid database name that still says which
// test it belongs to (names are at most 63 bytes).
func (c *Cluster) databaseName(test string) string {
	n := c.dbCount.Add(1)
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(test), "_"), "_")
	name := fmt.Sprintf("t%d_%s", n, base)
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

func (c *Cluster) createDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the cluster: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// start finds the binaries, runs initdb and starts the server.
func start() (*Cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		// The server refuses to run as root: run it as postgres, the user
		// the Debian package creates.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, the cluster runs as the postgres user, which does not exist (%v); %s", err, installHint)
		}
		c.asUser = u
	}
	c.reapStale()
	if err := c.makeDir(); err != nil {
		return nil, err
	}
	// Who owns the cluster, for reapStale: a test binary killed before
	// Main returns leaves its server running.
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	data := filepath.Join(c.dir, "data")
	// --no-sync: only initdb's own final flush is skipped; the server runs
	// with fsync=on, so commits are durable as in production.
	if out, err := c.run("initdb", "-D", data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port can be taken by someone else before the server binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
		c.opts = fmt.Sprintf("-c fsync=on -c synchronous_commit=on -c listen_addresses=127.0.0.1 -p %d -k '%s' -c max_connections=200", c.port, c.dir)
		out, err := c.pgStart()
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
			c.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
			os.RemoveAll(c.dir)
			return nil, fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
		}
	}
}

const (
	dirPrefix = "batos-pgtest-"
	ownerFile = "owner.pid"
)

// tempRoots are where the cluster's directory may go: TMPDIR, else /tmp.
// Run as root, the postgres user must reach it, which a TMPDIR under
// /root does not allow: /tmp is tried next.
func tempRoots() []string {
	roots := []string{os.TempDir()}
	if roots[0] != "/tmp" {
		roots = append(roots, "/tmp")
	}
	return roots
}

// makeDir creates the cluster's directory where the server's user can
// write.
func (c *Cluster) makeDir() error {
	var tried []string
	for _, root := range tempRoots() {
		dir, err := os.MkdirTemp(root, dirPrefix)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		c.dir = dir
		if err := c.chown(dir); err != nil {
			os.RemoveAll(dir)
			return err
		}
		if c.asUser == nil {
			return nil
		}
		if out, err := c.run("test", "-w", dir); err != nil {
			tried = append(tried, fmt.Sprintf("%s is not writable by the postgres user (%v%s)", dir, err, out))
			os.RemoveAll(dir)
			continue
		}
		return nil
	}
	return fmt.Errorf("no directory for the cluster: %s", strings.Join(tried, "; "))
}

// reapStale stops and removes the clusters of test processes that died
// without stopping theirs (killed, or interrupted): their servers would
// otherwise run until the machine stops. A cluster whose owner lives, or
// whose owner is unknown, is left alone.
func (c *Cluster) reapStale() {
	var dirs []string
	for _, root := range tempRoots() {
		found, _ := filepath.Glob(filepath.Join(root, dirPrefix+"*"))
		dirs = append(dirs, found...)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		stale := &Cluster{dir: dir, bin: c.bin, asUser: c.asUser}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			stale.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "-t", "30", "stop")
		}
		os.RemoveAll(dir)
	}
}

// pgStart starts the server and waits until it accepts connections.
func (c *Cluster) pgStart() ([]byte, error) {
	return c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "-o", c.opts, "start")
}

// stop shuts the server down and removes its directory.
func (c *Cluster) stop() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s (left %s for inspection)", err, out, c.dir)
	}
	return os.RemoveAll(c.dir)
}

// run runs one of the PostgreSQL binaries (or, by an absolute or bare
// name, another command), as postgres when we are root.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := name
	if name == "initdb" || name == "pg_ctl" || name == "postgres" {
		path = filepath.Join(c.bin, name)
	}
	var cmd *exec.Cmd
	switch {
	case c.asUser == nil:
		cmd = exec.Command(path, args...)
	case haveRunuser():
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser.Username, "--", path}, args...)...)
	default: // no util-linux runuser: su runs a shell command line
		line := shellQuote(path)
		for _, a := range args {
			line += " " + shellQuote(a)
		}
		cmd = exec.Command("su", "-s", "/bin/sh", c.asUser.Username, "-c", line)
	}
	cmd.Dir = c.dir // runuser keeps the directory; the postgres user must be able to enter it
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func haveRunuser() bool {
	_, err := exec.LookPath("runuser")
	return err == nil
}

// shellQuote quotes s for sh, in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *Cluster) chown(path string) error {
	if c.asUser == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.asUser.Uid)
	gid, _ := strconv.Atoi(c.asUser.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", path, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binaryDirs lists where the binaries may be: Debian's versioned
// directories, newest first, then /usr/local/bin and PATH. A variable for
// the harness's own test.
var binaryDirs = func() []string {
	var dirs []string
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = append(dirs, newestFirst(versions)...)
	dirs = append(dirs, "/usr/local/bin")
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	return dirs
}

// newestFirst orders /usr/lib/postgresql/NN/bin directories by version,
// newest first.
func newestFirst(dirs []string) []string {
	sort.SliceStable(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	return dirs
}

// versionOf reads the major version from /usr/lib/postgresql/NN/bin.
func versionOf(dir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	return v
}

// findBinaries returns the first directory holding all three binaries.
func findBinaries() (string, error) {
	dirs := binaryDirs()
	for _, dir := range dirs {
		ok := true
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in " + strings.Join(dirs, ", ") + "; " + installHint)
}
