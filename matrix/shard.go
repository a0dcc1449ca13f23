package matrix

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard selects every n-th kernel of the catalog, so n CI jobs cover the
// catalog exactly once: kernel i (0-based, catalog order) belongs to shard
// i%n+1. The zero value selects everything.
type Shard struct {
	Index, Count int // 1-based Index of Count; 0/0 = no sharding
}

// ParseShard parses "i/n" with 1 ≤ i ≤ n.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want i/n with 1 ≤ i ≤ n, e.g. 2/4", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// Has reports whether the kernel at catalog position pos is in this shard.
func (s Shard) Has(pos int) bool {
	return s.Count == 0 || pos%s.Count == s.Index-1
}

func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}
