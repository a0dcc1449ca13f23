package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strings"
)

// ModInfo reads the .modinfo section of a built module: vermagic, license,
// description, depends, ... (as modinfo(8) prints them). A key that occurs
// more than once (alias, import_ns) keeps its values joined by ",".
func ModInfo(ko string) (map[string]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, fmt.Errorf("modinfo %s: %w", ko, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("modinfo %s: no .modinfo section: not a kernel module", ko)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("modinfo %s: %w", ko, err)
	}
	info := make(map[string]string)
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		if old, dup := info[k]; dup {
			v = old + "," + v
		}
		info[k] = v
	}
	return info, nil
}
