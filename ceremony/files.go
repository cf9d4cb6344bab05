package ceremony

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ExistsError says an output file is already there; custos never replaces
// a file it did not just create.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exists; custos does not overwrite files", e.Path)
}

// createNew opens a new file for writing with O_EXCL, so an existing file,
// or a link planted in its place, is never written through.
func createNew(path string, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return nil, &ExistsError{path}
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// CreateSecretFile creates a new file of mode 0600 for a secret. The caller
// writes, syncs and closes it, and removes it on any failure.
func CreateSecretFile(path string) (*os.File, error) {
	return createNew(path, 0o600)
}

// writeNew writes a new file in one go and syncs it; on failure the file is
// removed, so nothing is left half written.
func writeNew(path string, b []byte, perm fs.FileMode) error {
	f, err := createNew(path, perm)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// replaceFile writes b to a temporary file beside path and renames it over
// path, so readers see the old or the new contents, never a mix.
func replaceFile(path string, b []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, perm)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// outputs tracks the files a step creates so that a failure removes all of
// them: a split either leaves every file or none.
type outputs struct {
	created []string
	keep    bool
}

// refuseExisting fails before anything is written when any path exists.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return &ExistsError{p}
		}
	}
	return nil
}

func (o *outputs) add(path string) { o.created = append(o.created, path) }

// cleanup removes every created file unless the step succeeded.
func (o *outputs) cleanup() {
	if o.keep {
		return
	}
	for i := len(o.created) - 1; i >= 0; i-- {
		os.Remove(o.created[i])
	}
}
