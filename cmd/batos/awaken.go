package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"batos/internal/uvm"
)

// awakenImage opens the image through the uvm, which creates the
// primordial image on first use and upgrades system objects on later
// ones. create=false refuses to make a new image file.
func awakenImage(ctx context.Context, e *env, create bool) (*uvm.UVM, error) {
	if _, err := os.Stat(e.image); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, fmt.Errorf("no image at %s (create one with: batos -image %s image init, or start batos repl)", e.image, e.image)
	}
	u, created, err := uvm.Open(ctx, e.image, &uvm.Options{User: currentUser()})
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(e.stderr, "batos: created image %s\n", e.image)
	}
	return u, nil
}
