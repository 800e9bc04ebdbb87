package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"

	"batos/internal/image"
	"batos/internal/store/bolt"
)

// openedImage is an image and the store file beneath it.
type openedImage struct {
	*image.DB
	store *bolt.DB
}

func (o *openedImage) Close() error { return o.store.Close() }

// openImage opens the image at e.image. A missing image file is created
// only when create is set (the caller then runs Init); otherwise the user
// is told how to create one.
func openImage(ctx context.Context, e *env, create bool) (*openedImage, error) {
	return openWith(e, create, nil)
}

// openImageReadOnly opens the image at e.image for commands that only
// read (stats, log, history): nothing is written, so they work on a full
// disk, and an unclean shutdown's log is read, not replayed into the
// file.
func openImageReadOnly(ctx context.Context, e *env) (*openedImage, error) {
	return openWith(e, false, &bolt.Options{ReadOnly: true})
}

// openImageToVerify opens the image read-only even when its page
// structure is damaged, so that verify can list the damage.
func openImageToVerify(ctx context.Context, e *env) (*openedImage, error) {
	return openWith(e, false, &bolt.Options{ReadOnly: true, AllowDamaged: true})
}

func openWith(e *env, create bool, opts *bolt.Options) (*openedImage, error) {
	if _, err := os.Stat(e.image); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, fmt.Errorf("no image at %s (create one with: batos -image %s image init)", e.image, e.image)
	}
	s, err := bolt.Open(e.image, opts)
	if err != nil {
		return nil, err
	}
	db := image.New(s, &image.Options{User: currentUser()})
	return &openedImage{DB: db, store: s}, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "batos"
}
