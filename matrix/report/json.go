package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Read reads a report.json, checks it against the schema (see Validate) and
// returns it finalized: sorted, and with Summary recomputed from the cells
// whatever the file says. Errors name the file, the field and the cell.
func Read(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return r, nil
}

// Parse is Read for a report already in memory.
func Parse(data []byte) (*Report, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty; want a kmatrix report.json", ErrInvalid)
	}
	// The schema first: a report of another version may not even decode
	// into these types, and "wrong version" is the useful error then.
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, jsonError(data, err)
	}
	s := ""
	if head.Schema != nil {
		s = *head.Schema
	}
	v1 := s == SchemaV1
	if v1 {
		s = Schema
	}
	if e := checkSchema(s, head.Schema != nil); e != nil {
		return nil, e
	}
	r := new(Report)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, jsonError(data, err)
	}
	if v1 {
		upgradeV1(r)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r.Finalize()
	return r, nil
}

// jsonError turns encoding/json's byte offsets into line:column, which is
// what an editor can jump to.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input":
		return fmt.Errorf("%w: the JSON ends early (truncated file?)", ErrInvalid)
	case errors.As(err, &syn):
		// Offset is just past the offending byte.
		return fmt.Errorf("%w: not valid JSON at %s: %v", ErrInvalid, lineCol(data, syn.Offset-1), syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Errorf("%w: want a JSON object (a kmatrix report), got a JSON %s", ErrInvalid, typ.Value)
		}
		return &FieldError{Field: field,
			Problem: fmt.Sprintf("got a JSON %s at %s; want %s", typ.Value, lineCol(data, typ.Offset), typ.Type)}
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func lineCol(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - int64(bytes.LastIndexByte(before, '\n'))
	return fmt.Sprintf("line %d, column %d", line, col)
}

// WriteJSON writes r as indented JSON. It does not finalize r; Write does.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Logs are full of <, > and &: keep them readable, this is not HTML.
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// upgradeV1 renames a v1 report's checks to v2's rule: the built-in
// payloads' Go tests by their names ("Load" → "TestLoad"), the module build
// by its stage ("Build" → "build").
func upgradeV1(r *Report) {
	r.Schema = Schema
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Check == "Build" && c.Stage == outcome.StageBuild {
			c.Check = "build"
			continue
		}
		if (c.Payload == "bpf" || c.Payload == "kmod") && c.Check != "" && c.Check[0] >= 'A' && c.Check[0] <= 'Z' && !strings.HasPrefix(c.Check, "Test") {
			c.Check = "Test" + c.Check
		}
	}
}
