package report

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
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

	"github.com/kmatrix/kmatrix/matrix/outcome"
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
		// 8 checks on 4 kernels: a row per check under a row per payload,
		// a column per kernel, "works since" last.
		`<table class="grid bycheck">`,
		`<tr class="group"><th colspan="6" scope="rowgroup">kmod</th></tr>`,
		`<th class="check" scope="row" title="stage: behave">TestProcEntry</th>`,
		`<td class="since since-from">6.12.118</td>`,
		`<td class="since since-none">—</td>`,
		`<div class="kname">debian-bookworm</div><div class="krel">6.1.0-56-cloud-amd64</div>`,
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

func TestHTMLRowPerKernel(t *testing.T) {
	// More kernels than checks: a row per kernel, a column per check,
	// payloads side by side, and "works since" in the table's foot.
	r := big(6, 3)
	r.Cells[0].Outcome = outcome.LoadError
	r.Finalize()
	var b bytes.Buffer
	require.NoError(t, r.WriteHTML(&b))
	h := b.String()
	assert.Equal(t, 18, strings.Count(h, `<a class="cell o-`))
	assert.NotContains(t, h, "bycheck\">")
	has(t, h, `<th class="payload" colspan="2">bpf</th><th class="payload" colspan="1">kmod</th>`)
	has(t, h, `<td class="first"><a class="cell o-pass"`)
	has(t, h, `<tfoot>`)
	has(t, h, `<td class="since since-from">6.1.7</td><td class="since since-all">all</td><td class="since since-all">all</td>`)
}

func TestHTMLStylesEveryOutcome(t *testing.T) {
	// Every outcome has its colour and symbol (the legend shows them all).
	for _, o := range outcome.All {
		assert.Regexp(t, `\.o-`+regexp.QuoteMeta(string(o))+`[ ,][^{]*\{ background:`, htmlSource, "%s has no colour", o)
		assert.Contains(t, htmlSource, ".o-"+string(o)+" .sym::before", "%s has no symbol", o)
	}
}

func TestHTMLBreaksLongCheckNames(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, wide().WriteHTML(&b))
	has(t, b.String(), `>TestCounts/<wbr>exec_<wbr>events_<wbr>are_<wbr>counted_<wbr>per_<wbr>pid</th>`)
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
	has(t, h, "&lt;script&gt;alert(&#39;check&#39;)&lt;/<wbr>script&gt;") // the row's name, breakable
	has(t, h, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
}

var (
	screenshot = flag.Bool("screenshot", false, "also write the HTML screenshot to testdata/report.png (with -update)")
	shots      = flag.String("shots", "", "keep TestHTMLScreenshot's pictures in this `dir`, to look at them")
	readmeShot = flag.String("readme-report", "", "render this real run's report.json `file` as docs/report.png, README's picture")
)

// TestHTMLScreenshot renders reports in headless Chromium and checks the
// pictures: the grid's colours must be on them, so broken CSS or markup
// that the browser cannot lay out fails here. With -update -screenshot it
// refreshes testdata/report.png, the sample's screenshot in the repository.
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

	t.Run("sample", func(t *testing.T) {
		img, png := shoot(t, browser, sample(t), 1400, 900)
		// The pass cells' green and the kernel panic's solid red (light theme)
		// cover real areas of the picture.
		assert.Greater(t, count(img, color.RGBA{0xd7, 0xf5, 0xdd, 0xff}), 19*3000, "pass cells are green")
		assert.Greater(t, count(img, color.RGBA{0xa4, 0x0e, 0x26, 0xff}), 3000, "the panic cell is solid red")
		assert.Greater(t, count(img, color.RGBA{0xff, 0xe4, 0xc7, 0xff}), 3000, "the build error is orange")
		if *update && *screenshot {
			require.Less(t, len(png), 300<<10, "keep the committed screenshot small")
			require.NoError(t, os.WriteFile(filepath.Join("testdata", "report.png"), png, 0o644))
		}
	})

	// README's picture is a real run's report, rendered by today's code:
	//   go test ./matrix/report -run TestHTMLScreenshot/readme -readme-report /tmp/r/report.json
	t.Run("readme", func(t *testing.T) {
		if *readmeShot == "" {
			t.Skip("no -readme-report: docs/report.png stays as it is")
		}
		r, err := Read(*readmeShot)
		require.NoError(t, err)
		_, png := shoot(t, browser, r, 1400, 1000)
		require.Less(t, len(png), 300<<10, "keep the committed screenshot small")
		require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", "report.png"), png, 0o644))
	})

	// 30 checks on 4 kernels: a row per check, and the whole grid (with its
	// "works since" column) within the page's width, at a common laptop
	// window size.
	t.Run("30 checks", func(t *testing.T) {
		img, _ := shoot(t, browser, wide(), 1400, 2200)
		assert.Greater(t, count(img, color.RGBA{0xd7, 0xf5, 0xdd, 0xff}), 109*2500, "every pass cell is on the page, green")
		assert.Greater(t, count(img, color.RGBA{0xe8, 0xdc, 0xff, 0xff}), 2*2500, "both attach errors are purple")
		// Nothing of the grid is cut off at the right: the last column
		// inside the panel (x 1290-1306: main is 1280 px wide, centred,
		// with 32 px of padding) is "works since", text on white, and no
		// cell's green reaches it, as it would if the grid overflowed.
		edge := image.Rect(1290, 0, 1306, 2200)
		assert.Zero(t, count(img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(edge), color.RGBA{0xd7, 0xf5, 0xdd, 0xff}), "pass cells reach the right edge of the grid's panel: the grid does not fit the page")
	})
}

// shoot writes r as report.html, screenshots it in a w×h window and
// returns the picture and its PNG bytes.
func shoot(t *testing.T, browser string, r *Report, w, h int) (image.Image, []byte) {
	dir := t.TempDir()
	require.NoError(t, r.Write(dir))
	out := filepath.Join(dir, "shot.png")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars",
		"--screenshot="+out, fmt.Sprintf("--window-size=%d,%d", w, h), "file://"+filepath.Join(dir, HTMLFile))
	// Chromium forks helpers: on timeout kill its whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	logs, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium did not finish within 90 s:\n%s", logs)
	}
	require.NoError(t, err, "chromium:\n%s", logs)

	data, err := os.ReadFile(out)
	require.NoError(t, err, "chromium wrote no screenshot:\n%s", logs)
	if *shots != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".png"
		require.NoError(t, os.WriteFile(filepath.Join(*shots, name), data, 0o644))
	}
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
	return img, data
}

// count is how many pixels of img have the colour want (give or take 2).
func count(img image.Image, want color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, want.R) && near(g>>8, want.G) && near(bl>>8, want.B) {
				n++
			}
		}
	}
	return n
}

func near(a uint32, b uint8) bool { return a+2 >= uint32(b) && a <= uint32(b)+2 }

// has is assert.Contains without printing a whole page on failure.
func has(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("missing %q", sub)
	}
}
