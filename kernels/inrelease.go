package kernels

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultKeyring is the Debian archive keyring as installed by the
// debian-archive-keyring package.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// release is one verified InRelease file: the signed index of a suite.
type release struct {
	suite  string // as requested: "bookworm-security"
	mirror string
	url    string
	hash   string // SHA-256 of the whole InRelease file: the key of everything cached from it
	fields map[string]string
	files  map[string]indexFile // "main/binary-amd64/Packages.gz" → its digest
}

type indexFile struct {
	sha256 string
	size   int64
}

// readKeyring loads an OpenPGP keyring, binary (the .gpg files in
// /usr/share/keyrings) or ASCII-armored.
func readKeyring(path string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w; install debian-archive-keyring or set Options.Keyring", err)
	}
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", path, err)
		}
		return el, nil
	}
	el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("keyring %s holds no keys", path)
	}
	return el, nil
}

// verifyInRelease checks the clearsigned InRelease data against keyring
// and returns the signed text. Only the signed part is ever parsed: text
// outside the signature is ignored, as apt does.
func verifyInRelease(data []byte, keyring openpgp.EntityList, now time.Time, what string) ([]byte, error) {
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: %w: not an OpenPGP clearsigned file", what, ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s: %w: %d bytes of unsigned data after the signature", what, ErrBadSignature, len(rest))
	}
	_, err := openpgp.CheckDetachedSignature(keyring, bytes.NewReader(block.Bytes), block.ArmoredSignature.Body, &packet.Config{Time: func() time.Time { return now }})
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, fmt.Errorf("%s: %w: signed by a key that is not in the keyring (%v); is the keyring the Debian archive keyring?", what, ErrBadSignature, err)
		}
		return nil, fmt.Errorf("%s: %w: %v", what, ErrBadSignature, err)
	}
	return block.Plaintext, nil
}

// parseRelease reads the fields and the SHA256 file list of a Release text.
func parseRelease(text []byte) (map[string]string, map[string]indexFile, error) {
	fields := map[string]string{}
	files := map[string]indexFile{}
	var cur string
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == "SHA256" {
				f := strings.Fields(line)
				if len(f) != 3 {
					return nil, nil, fmt.Errorf("SHA256 line %q: want \"<hash> <size> <path>\"", line)
				}
				size, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return nil, nil, fmt.Errorf("SHA256 line %q: size: %w", line, err)
				}
				files[f[2]] = indexFile{sha256: f[0], size: size}
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("line %q: want \"Field: value\"", line)
		}
		cur = k
		fields[k] = strings.TrimSpace(v)
	}
	if len(files) == 0 {
		return nil, nil, errors.New("no SHA256 file list")
	}
	return fields, files, nil
}

// fetchRelease downloads, verifies and parses dists/<suite>/InRelease.
// When the mirror is unreachable, the copy cached by the last successful
// run is used (and verified again), so a warm resolve works offline.
func (s *session) fetchRelease(ctx context.Context, suite string) (*release, error) {
	mirror := s.mirrors.For(suite)
	url := mirror + "/dists/" + suite + "/InRelease"
	cached := filepath.Join(s.cache, "index", urlKey(mirror), suite+".InRelease")
	data, err := s.get(ctx, url)
	fromCache := false
	if err != nil {
		var he *httpError
		notFound := fmt.Errorf("suite %q: %w: %s does not exist (HTTP 404); use a Debian suite name such as bullseye, bookworm, trixie or sid", suite, ErrUnknownSuite, url)
		if errors.As(err, &he) && he.code == 404 {
			// Remembered, so that offline runs know sid has no -security.
			if os.MkdirAll(filepath.Dir(cached), 0o755) == nil {
				WriteFileAtomic(cached+".absent", nil, 0o644)
			}
			return nil, notFound
		}
		b, cerr := os.ReadFile(cached)
		if cerr != nil {
			if _, aerr := os.Stat(cached + ".absent"); aerr == nil {
				return nil, notFound
			}
			return nil, fmt.Errorf("suite %q: %w", suite, err)
		}
		s.logf("kernels: %s unreachable (%v); using the copy cached at %s", url, err, cached)
		data, fromCache = b, true
	}
	if err := s.loadKeyring(); err != nil {
		return nil, err
	}
	text, err := verifyInRelease(data, s.keyring, s.now(), url)
	if err != nil {
		return nil, err
	}
	fields, files, err := parseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if vu := fields["Valid-Until"]; vu != "" {
		t, err := time.Parse(time.RFC1123, strings.Replace(vu, "UTC", "GMT", 1))
		if err != nil {
			return nil, fmt.Errorf("%s: Valid-Until %q: %w", url, vu, err)
		}
		if s.now().After(t) {
			if !s.allowExpired {
				return nil, fmt.Errorf("%s: %w: it expired on %s; this mirror may be a frozen snapshot: accept it with --allow-expired, Options.AllowExpired or %s=1",
					url, ErrExpiredIndex, t.Format(time.RFC3339), EnvAllowExpired)
			}
			s.expiredOnce.Do(func() { s.logf("kernels: accepting index files past their Valid-Until (%s)", s.allowReason) })
		}
	}
	if !fromCache {
		os.Remove(cached + ".absent")
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
			if err := WriteFileAtomic(cached, data, 0o644); err != nil {
				return nil, err
			}
		} else {
			return nil, fmt.Errorf("index cache: %w", err)
		}
	}
	sum := sha256.Sum256(data)
	return &release{suite: suite, mirror: mirror, url: url, hash: hex.EncodeToString(sum[:]), fields: fields, files: files}, nil
}

// urlKey turns a mirror URI into a short directory name for the cache.
func urlKey(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:6])
}
