package kernels

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
)

// binPkg is one stanza of a Packages index, with the pocket it came from.
type binPkg struct {
	Name, Version, Arch string
	Source              string // source package name, without "(version)"
	Depends             string
	Filename, SHA256    string
	Size                int64
	Pocket              string
}

// keepStanza decides which stanzas of the (50–65 MB) Packages indexes are
// kept: only kernel packages matter, and keeping just them makes the cached
// index a few MB and a warm resolve fast.
func keepStanza(name string) bool { return strings.HasPrefix(name, "linux-") }

// index returns the kernel packages of one pocket for one architecture
// (main component, binary-<arch> and binary-all), reading the verified,
// cached, filtered index when there is one for this InRelease.
func (s *session) index(ctx context.Context, rel *release, arch string) ([]*binPkg, error) {
	key := rel.hash + " " + arch
	s.mu.Lock()
	if pk, ok := s.indexes[key]; ok {
		s.mu.Unlock()
		return pk, nil
	}
	s.mu.Unlock()
	mu := s.fetchMu("index " + key)
	mu.Lock()
	defer mu.Unlock()
	s.mu.Lock()
	if pk, ok := s.indexes[key]; ok {
		s.mu.Unlock()
		return pk, nil
	}
	s.mu.Unlock()
	var all []*binPkg
	seen := map[string]bool{}
	hasAll := false
	for _, a := range []string{arch, "all"} {
		base := "main/binary-" + a + "/Packages"
		var name string
		for _, ext := range []string{".gz", ".xz", ""} {
			if _, ok := rel.files[base+ext]; ok {
				name = base + ext
				break
			}
		}
		if name == "" {
			if a == arch {
				return nil, fmt.Errorf("%s lists no %s index: is it a Debian suite for %s?", rel.url, base, arch)
			}
			continue
		}
		if a == "all" && (hasAll || rel.fields["No-Support-for-Architecture-all"] == "Packages") {
			// Debian lists Architecture: all packages (the headers' -common)
			// in binary-<arch> too ("No-Support-for-Architecture-all:
			// Packages", and in practice the security archive); binary-all
			// is only needed where it is split out. Skipping it also avoids
			// snapshot mirrors whose binary-all lags their InRelease.
			continue
		}
		text, err := s.filteredIndex(ctx, rel, name)
		if err != nil {
			return nil, err
		}
		pkgs, err := parseStanzas(text, rel.suite)
		if err != nil {
			return nil, fmt.Errorf("%s/dists/%s/%s: %w", rel.mirror, rel.suite, name, err)
		}
		for _, p := range pkgs {
			k := p.Name + "\x00" + p.Version + "\x00" + p.Arch
			hasAll = hasAll || p.Arch == "all"
			if !seen[k] {
				seen[k] = true
				all = append(all, p)
			}
		}
	}
	s.mu.Lock()
	s.indexes[key] = all
	s.mu.Unlock()
	return all, nil
}

// filteredIndex downloads one Packages file, checks it against the
// InRelease digest, and keeps the linux-* stanzas; the result is cached
// under the InRelease hash, so it is reused exactly as long as the signed
// index it came from.
func (s *session) filteredIndex(ctx context.Context, rel *release, name string) ([]byte, error) {
	cached := filepath.Join(s.cache, "index", rel.suite+"-"+rel.hash[:16]+"-"+strings.NewReplacer("/", "_").Replace(name)+".linux")
	if b, err := os.ReadFile(cached); err == nil {
		return b, nil
	}
	f := rel.files[name]
	plain := rel.mirror + "/dists/" + rel.suite + "/" + name
	urls := []string{plain}
	if rel.fields["Acquire-By-Hash"] == "yes" {
		// by-hash names never change content, so a mirror update between
		// InRelease and this download cannot hand us a mismatched file;
		// snapshot mirrors lack some, hence the plain name as fallback.
		urls = []string{rel.mirror + "/dists/" + rel.suite + "/" + filepath.Dir(name) + "/by-hash/SHA256/" + f.sha256, plain}
	}
	var text []byte
	var err error
	for _, url := range urls {
		text, err = s.fetchIndexFile(ctx, url, name, f)
		var he *httpError
		if !errors.As(err, &he) || he.code != 404 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return nil, &writeError{fmt.Errorf("index cache: %w", err)}
	}
	if err := WriteFileAtomic(cached, text, 0o644); err != nil {
		return nil, &writeError{err}
	}
	return text, nil
}

func (s *session) fetchIndexFile(ctx context.Context, url, name string, f indexFile) ([]byte, error) {
	var out bytes.Buffer
	var cur *pipeWriter
	err := s.fetchVerified(ctx, url, f.sha256, f.size, func() (io.Writer, error) {
		if cur != nil {
			cur.abort()
		}
		out.Reset()
		cur = newPipeWriter(func(r io.Reader) error { return filterStanzas(r, name, &out) })
		return cur, nil
	}, false) // it streams through a decompressor: a retry starts over
	if err != nil {
		if cur != nil {
			cur.abort()
		}
		return nil, err
	}
	if err := cur.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return out.Bytes(), nil
}

// pipeWriter feeds a consumer running in its own goroutine; what the
// consumer produced is only trusted after fetchVerified has checked the
// digest of the bytes written.
type pipeWriter struct {
	pw   *io.PipeWriter
	done chan error
}

func newPipeWriter(consume func(io.Reader) error) *pipeWriter {
	pr, pw := io.Pipe()
	p := &pipeWriter{pw: pw, done: make(chan error, 1)}
	go func() {
		err := consume(pr)
		// Drain, so the writer never blocks even if the consumer stopped early.
		io.Copy(io.Discard, pr)
		p.done <- err
	}()
	return p
}

func (p *pipeWriter) Write(b []byte) (int, error) { return p.pw.Write(b) }

// finish ends the input and returns the consumer's result.
func (p *pipeWriter) finish() error {
	p.pw.Close()
	return <-p.done
}

// abort ends the input with an error and waits for the consumer to stop.
func (p *pipeWriter) abort() {
	p.pw.CloseWithError(errors.New("download aborted"))
	<-p.done
}

func filterStanzas(r io.Reader, name string, out *bytes.Buffer) error {
	var dr io.Reader = r
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := kgzip.NewReader(r)
		if err != nil {
			return err
		}
		dr = zr
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(r)
		if err != nil {
			return err
		}
		dr = xr
	}
	br := bufio.NewReaderSize(dr, 1<<20)
	var stanza bytes.Buffer
	keep := false
	flush := func() {
		if keep {
			out.Write(stanza.Bytes())
			out.WriteByte('\n')
		}
		stanza.Reset()
		keep = false
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if len(bytes.TrimSpace(line)) == 0 {
				flush()
			} else {
				if stanza.Len() == 0 && bytes.HasPrefix(line, []byte("Package: ")) {
					keep = keepStanza(string(bytes.TrimSpace(line[len("Package: "):])))
				}
				if keep {
					stanza.Write(line)
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			flush()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func parseStanzas(text []byte, pocket string) ([]*binPkg, error) {
	pr, err := control.NewParagraphReader(bytes.NewReader(text), nil)
	if err != nil {
		return nil, err
	}
	var out []*binPkg
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		size, _ := strconv.ParseInt(p.Values["Size"], 10, 64)
		b := &binPkg{
			Name: p.Values["Package"], Version: p.Values["Version"], Arch: p.Values["Architecture"],
			Depends: p.Values["Depends"], Filename: p.Values["Filename"], SHA256: p.Values["SHA256"],
			Size: size, Pocket: pocket,
		}
		b.Source, _, _ = strings.Cut(p.Values["Source"], " ")
		if b.Source == "" {
			b.Source = b.Name
		}
		if b.Name == "" || b.Version == "" || b.Filename == "" || len(b.SHA256) != 64 {
			return nil, fmt.Errorf("stanza %q: missing Package, Version, Filename or SHA256", b.Name)
		}
		out = append(out, b)
	}
}
