package command

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// TestFileError: an error about a file a request named says what the
// file was and what is wrong with it, without Go's operation, and still
// matches what the system's error matches.
func TestFileError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
		is   error
	}{
		{"missing", &fs.PathError{Op: "stat", Path: "/nonexistent.gguf", Err: syscall.ENOENT},
			"adapter /nonexistent.gguf: no such file", fs.ErrNotExist},
		{"unreadable", fmt.Errorf("catalog add: %w", &fs.PathError{Op: "open", Path: "/secret.gguf", Err: syscall.EACCES}),
			"cannot read adapter /secret.gguf: permission denied", fs.ErrPermission},
		{"a directory's file", &fs.PathError{Op: "stat", Path: "/etc/passwd/x.gguf", Err: syscall.ENOTDIR},
			"adapter /etc/passwd/x.gguf: not a directory", syscall.ENOTDIR},
		{"no file", errors.New("something else"), "something else", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := fileError("adapter", tt.err)
			if err.Error() != tt.want || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("got %q (matching %v: %t), want %q", err, tt.is, errors.Is(err, tt.is), tt.want)
			}
		})
	}
}
