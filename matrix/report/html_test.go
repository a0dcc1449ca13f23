package report

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTMLContainsTheWholeMatrix(t *testing.T) {
	r := sample(t)
	var b bytes.Buffer
	require.NoError(t, r.WriteHTML(&b))
	h := b.String()
	assert.Equal(t, 25, strings.Count(h, `<a class="cell o-`), "one grid cell per report cell")
	assert.Equal(t, 4*8-25, strings.Count(h, `<span class="none"`), "positions without a cell say not run")
	assert.Equal(t, 25, strings.Count(h, `<details class="ev`), "every cell has its evidence")
	assert.Equal(t, 6, strings.Count(h, `<details class="ev" id=`), "six cells did not pass")
	for _, w := range []string{
		"<title>kmatrix · 5 of 25 cells failing on 4 kernels</title>",
		`<a class="cell o-kernel-panic" href="#cell-25"`,
		`<td class="first"><a class="cell o-build-error"`,
		"unknown func bpf_loop#181",   // a verifier log
		"kmatrix_mod.c:57:17: error:", // a compiler error with file:line
		"<dt>verified_insns</dt><dd>9</dd>",
		"6.12.118&#43;deb13-cloud-amd64", // html/template escapes + in text
		"2.2 s (floor 2.1 s, 1.03×)",
		"Generated 2026-05-04 09:30 UTC",
		"@media (prefers-color-scheme: dark)",
	} {
		has(t, h, w)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, sample(t).WriteHTML(&b))
	h := b.String()
	// Nothing loaded from elsewhere: no remote or relative src/href, no
	// stylesheet links, no CSS imports or url() fetches.
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(h, -1) {
		assert.True(t, strings.HasPrefix(m[1], "#"), "%s points outside the page", m[0])
	}
	assert.NotRegexp(t, `(?i)<link\b|@import|url\(|<iframe|<img`, h)
}

func TestHTMLEscapesEvidence(t *testing.T) {
	r := sample(t)
	c := cell(t, r, "debian-sid/kmod/TestProcEntry")
	c.Evidence.Log = "</pre><script>alert('log')</script>"
	c.Evidence.Message = `"><img src=x onerror=alert(1)>`
	c.Evidence.Facts = map[string]string{"<b>fact</b>": "<i>value</i>"}
	r.Kernels[3].Release = "<script>alert('release')</script>"
	c.Check = "<script>alert('check')</script>"
	r.Finalize()
	var b bytes.Buffer
	require.NoError(t, r.WriteHTML(&b))
	h := b.String()
	assert.Equal(t, 1, strings.Count(h, "<script>"), "only the page's own script")
	assert.False(t, strings.Contains(h, "<img"), "an <img> got through")
	assert.False(t, strings.Contains(h, "<b>fact"), "a <b> got through")
	has(t, h, "&lt;/pre&gt;&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;")
	has(t, h, "&lt;script&gt;alert(&#39;release&#39;)&lt;/script&gt;")
	has(t, h, "&lt;script&gt;alert(&#39;check&#39;)&lt;/script&gt;")
	has(t, h, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
}

var screenshot = flag.Bool("screenshot", false, "also write the HTML screenshot to testdata/report.png (with -update)")

// TestHTMLScreenshot renders the sample report in headless Chromium and
// checks the picture: the grid's colours must be on it, so broken CSS or
// markup that the browser cannot lay out fails here. With -update it
// refreshes testdata/report.png, the screenshot in the repository.
func TestHTMLScreenshot(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no headless browser: install Debian's chromium package (apt-get install chromium) to check how report.html renders")
	}
	dir := t.TempDir()
	require.NoError(t, sample(t).Write(dir))
	out := filepath.Join(dir, "shot.png")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars",
		"--screenshot="+out, "--window-size=1400,900", "file://"+filepath.Join(dir, HTMLFile))
	// Chromium forks helpers: on timeout kill its whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	logs, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium did not finish within 90 s:\n%s", logs)
	}
	require.NoError(t, err, "chromium:\n%s", logs)

	f, err := os.Open(out)
	require.NoError(t, err, "chromium wrote no screenshot:\n%s", logs)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 1400, 900), img.Bounds())

	// The pass cells' green and the kernel panic's solid red (light theme)
	// cover real areas of the picture.
	count := func(want color.RGBA) int {
		n := 0
		for y := 0; y < 900; y++ {
			for x := 0; x < 1400; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if near(r>>8, want.R) && near(g>>8, want.G) && near(b>>8, want.B) {
					n++
				}
			}
		}
		return n
	}
	assert.Greater(t, count(color.RGBA{0xd7, 0xf5, 0xdd, 0xff}), 19*3000, "pass cells are green")
	assert.Greater(t, count(color.RGBA{0xa4, 0x0e, 0x26, 0xff}), 3000, "the panic cell is solid red")
	assert.Greater(t, count(color.RGBA{0xff, 0xe4, 0xc7, 0xff}), 3000, "the build error is orange")

	if *update && *screenshot {
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Less(t, len(data), 300<<10, "keep the committed screenshot small")
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "report.png"), data, 0o644))
	}
}

func near(a uint32, b uint8) bool { return a+2 >= uint32(b) && a <= uint32(b)+2 }

// has is assert.Contains without printing a whole page on failure.
func has(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("missing %q", sub)
	}
}
