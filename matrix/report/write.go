package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The files Write creates in its directory.
const (
	JSONFile     = "report.json"
	MarkdownFile = "report.md"
	HTMLFile     = "report.html"
	JUnitFile    = "junit.xml"
)

// Write finalizes r, checks it (Validate), and writes report.json, report.md,
// report.html and junit.xml into dir, creating dir if needed. Every file is
// rendered before any is written, and each is written to a temporary name
// and renamed, so a reader (a CI step, a browser reloading) never sees a
// half-written file and a failed render leaves the old report whole.
func (r *Report) Write(dir string) error {
	r.Finalize()
	if err := r.Validate(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	files := []struct {
		name   string
		render func(io.Writer) error
	}{
		{JSONFile, r.WriteJSON},
		{MarkdownFile, r.WriteMarkdown},
		{HTMLFile, r.WriteHTML},
		{JUnitFile, r.WriteJUnit},
	}
	out := make([][]byte, len(files))
	for i, f := range files {
		var b bytes.Buffer
		if err := f.render(&b); err != nil {
			return fmt.Errorf("write report: render %s: %w", f.name, err)
		}
		out[i] = b.Bytes()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for i, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), out[i]); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory (rename is atomic only within a file system).
func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
