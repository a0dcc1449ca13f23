package matrix

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// archiveClient is what only the host side of kmatrix needs: the Debian
// archive client (package kernels) and what it links for signatures,
// decompression and catalogs. Their package initialisers cost a guest
// binary about 90 ms of start-up under TCG, so nothing that runs in a guest
// may link them.
var archiveClient = []string{
	"github.com/kmatrix/kmatrix/kernels",
	"github.com/ProtonMail/go-crypto",
	"golang.org/x/crypto/openpgp",
	"github.com/cloudflare/circl",
	"gopkg.in/yaml.v3",
	"github.com/klauspost/compress",
	"github.com/pierrec/lz4",
	"github.com/ulikunitz/xz",
	"github.com/xi2/xz",
	"github.com/kjk/lzma",
	"pault.ag/go/debian",
}

// TestLayering checks that the lower layers (vmtest, kmod, bpf) and what
// runs inside a guest do not link the archive client, and that no lower
// layer imports package matrix.
func TestLayering(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command to list dependencies")
	}
	for _, c := range []struct {
		pkg  string
		test bool // the package's test binary, as it runs in a guest
	}{
		{"github.com/kmatrix/kmatrix/vmtest", false},
		{"github.com/kmatrix/kmatrix/kmod", false},
		{"github.com/kmatrix/kmatrix/bpf", false},
		{"github.com/kmatrix/kmatrix/matrix/guest", false},
		{"github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest", false},
		{"github.com/kmatrix/kmatrix/bpf", true},
		{"github.com/kmatrix/kmatrix/kmod", true},
	} {
		args := []string{"list", "-deps"}
		if c.test {
			args = append(args, "-test")
		}
		out, err := exec.Command("go", append(args, c.pkg)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range archiveClient {
				// kernels/version is a leaf of its own; the rest of kernels is not.
				sub := strings.HasPrefix(dep, bad+"/") && bad != "github.com/kmatrix/kmatrix/kernels"
				assert.False(t, dep == bad || sub, "%s (test binary: %v) links %s", c.pkg, c.test, dep)
			}
			if !strings.HasPrefix(c.pkg, "github.com/kmatrix/kmatrix/matrix") {
				assert.False(t, dep == "github.com/kmatrix/kmatrix/matrix" || strings.HasPrefix(dep, "github.com/kmatrix/kmatrix/matrix/"),
					"%s is a lower layer but imports %s", c.pkg, dep)
			}
		}
	}
}
