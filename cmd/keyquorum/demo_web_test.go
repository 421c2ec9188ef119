package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/keyquorum/keyquorum/internal/demo"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the README's screenshot, doc/demo-web.png, from the browser test")

// findBrowser returns a Chromium or Chrome to drive: $KEYQUORUM_CHROMIUM,
// or one on $PATH.
func findBrowser() string {
	if p := os.Getenv("KEYQUORUM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "chromium-headless-shell", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// webDemoArgs is the small federation both the page and `demo --json`
// run in the browser test: the same seed, so the same story.
var webDemoArgs = []string{"--trustees", "4", "--threshold", "2", "--users", "5", "--days", "14", "--epoch-days", "5", "--forgery-tries", "4000", "--seed", "7"}

// TestDemoWebInBrowser starts `keyquorum demo --web`, drives its page in
// a headless Chromium through every control (the compromise slider by
// keyboard, warrant edits, killing trustees, the in-browser audit check,
// the Clipper race, the epochs), and checks that every number the page
// shows equals the JSON API's and `keyquorum demo --json`'s for the same
// seed. It saves screenshots in its artifact directory (go test
// -artifacts keeps them) and, with -update-screenshot, the README's.
func TestDemoWebInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found, and CI must run the browser test: .ci/run installs it with `apt-get install -y chromium`")
		}
		t.Skip("no Chromium found: install it (Debian: `apt-get install -y chromium`) or set KEYQUORUM_CHROMIUM to a Chrome or Chromium binary")
	}
	bin, err := exec.LookPath("keyquorum")
	if err != nil {
		t.Fatal(err)
	}
	shots := t.ArtifactDir()

	// The reference: the CLI demo with the same seed, run alongside.
	type cliRun struct {
		rep *demo.Report
		err error
	}
	ref := make(chan cliRun, 1)
	go func() {
		out, err := exec.Command(bin, append([]string{"demo", "--json"}, webDemoArgs...)...).Output()
		var r cliRun
		if r.err = err; err == nil {
			r.rep = new(demo.Report)
			r.err = json.Unmarshal(out, r.rep)
		}
		ref <- r
	}()

	srv := exec.Command(bin, append([]string{"demo", "--web"}, webDemoArgs...)...)
	tmp := t.TempDir() // the demo's temporary directory goes here, and must be gone at the end
	srv.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr syncBuffer
	srv.Stderr = &stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo --web exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			t.Errorf("demo --web did not exit within 30s of SIGTERM")
		}
	}
	defer stop()
	first, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v; stderr:\n%s", err, stderr.String())
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(first), "serving on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/") {
		t.Fatalf("first line %q, want serving on http://127.0.0.1:PORT/", first)
	}
	go io.Copy(io.Discard, stdout)

	api := func(method, path string, body, v any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+strings.TrimPrefix(path, "/"), rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, which lives as long as bctx
		t.Fatalf("starting %s: %v", browser, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
	defer cancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v; demo's stderr:\n%s", what, err, stderr.String())
		}
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	var shotOf func(name string, take chromedp.Action[[]byte]) []byte
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	attr := func(sel, name string) string {
		t.Helper()
		a, err := chromedp.Run(ctx, chromedp.AttributeValue(css(sel), name))
		if err != nil {
			t.Fatalf("reading %s's %s: %v", sel, name, err)
		}
		return a.Value
	}
	eval := func(js string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[any](js)(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	shot := func(name string) []byte { t.Helper(); return shotOf(name, chromedp.FullScreenshot(100)) }
	shotOf = func(name string, take chromedp.Action[[]byte]) []byte {
		t.Helper()
		b, err := chromedp.Run(ctx, take)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}

	// The page is served at once and fills in when the trustees are up.
	run("loading the page", chromedp.Navigate(base), chromedp.WaitVisible(css("#status")))
	run("waiting for the federation", chromedp.WaitReady(css(`body[data-ready="true"]`)))

	var state struct {
		Ready  bool         `json:"ready"`
		Report *demo.Report `json:"report"`
	}
	api("GET", "/api/state", nil, &state)
	rep := state.Report
	cli := <-ref
	if cli.err != nil {
		t.Fatalf("demo --json: %v", cli.err)
	}
	// The page's run and the CLI's measure the same story.
	same := func(what string, page, want int) {
		t.Helper()
		if page != want {
			t.Errorf("%s: page/API shows %d, demo --json %d", what, page, want)
		}
	}
	same("sessions", rep.Sessions, cli.rep.Sessions)
	same("in scope", rep.InScope, cli.rep.InScope)
	same("Clipper tries", rep.LEAFForgeryTries, cli.rep.LEAFForgeryTries)
	cliRows := map[string]demo.Design{}
	for _, d := range cli.rep.Designs {
		cliRows[d.Name] = d
	}
	n, th := rep.Trustees, rep.Threshold

	// The compromise slider, by keyboard: k = 0..n.
	run("focusing the slider", chromedp.Focus(css("#k")))
	for k := 0; k <= n; k++ {
		if k > 0 {
			run("moving the slider", chromedp.KeyEvent(kb.ArrowRight))
		}
		run("waiting for the chart", chromedp.WaitReady(css(fmt.Sprintf(`#compromise[data-k="%d"]`, k))))
		var first []int
		for i := 1; i <= k; i++ {
			first = append(first, i)
		}
		var exp []demo.Exposure
		api("POST", "/api/compromise", map[string]any{"trustees": first}, &exp)
		for _, e := range exp {
			shown := text(fmt.Sprintf(`#comp-table td[data-design="%s"]`, e.Design))
			same(fmt.Sprintf("k=%d %s (API)", k, e.Design), atoi(t, shown), e.Exposed)
			same(fmt.Sprintf("k=%d %s (demo --json)", k, e.Design), atoi(t, shown), cliRows[e.Design].ExposedWhenCompromised[k])
		}
		if k == th {
			if s := text("#comp-sentence"); !strings.Contains(s, fmt.Sprintf("%d ≥ t = %d", k, th)) {
				t.Errorf("sentence at k=t: %q", s)
			}
			shot("compromise-k-t.png")
		}
	}

	// The hook: one stolen key.
	run("stealing one key", chromedp.Click(css("#hook-steal")), chromedp.WaitReady(css(`#hook-master .lock.open`)))
	if s := text("#hook-master-text"); !strings.Contains(s, fmt.Sprintf("%d of %d", rep.Sessions, rep.Sessions)) {
		t.Errorf("hook, master key: %q", s)
	}
	if s := text("#hook-threshold-text"); !strings.Contains(s, fmt.Sprintf("0 of %d", rep.Sessions)) {
		t.Errorf("hook, threshold: %q", s)
	}

	// The demo's own warrant, then edits of it.
	var tl demo.Timeline
	api("GET", "/api/timeline", nil, &tl)
	send := func(what string) {
		t.Helper()
		run(what, eval(`document.querySelector("#warrant").removeAttribute("data-covered")`),
			chromedp.Click(css("#war-send")), chromedp.WaitReady(css(`#warrant[data-covered]`)))
	}
	send("sending the warrant")
	same("warrant: covered", atoi(t, attr("#warrant", "data-covered")), cli.rep.InScope)
	same("warrant: read", atoi(t, attr("#warrant", "data-recovered")), cli.rep.Recovered)
	shot("warrant.png")

	// Narrow the window to its last three days.
	from := tl.Warrant.To.AddDate(0, 0, -3).Format("2006-01-02")
	run("editing the window", chromedp.SetValue(css("#war-from"), from))
	send("sending the narrower warrant")
	var res demo.WarrantResult
	w := tl.Warrant
	w.From = tl.Warrant.To.AddDate(0, 0, -3)
	api("POST", "/api/warrant", w, &res)
	same("narrow warrant: covered", atoi(t, attr("#warrant", "data-covered")), len(res.Covered))
	same("narrow warrant: read", atoi(t, attr("#warrant", "data-recovered")), len(res.Recovered))
	if len(res.Covered) >= rep.InScope {
		t.Errorf("three days cover %d sessions, the week %d", len(res.Covered), rep.InScope)
	}

	// A judge no trustee trusts: each trustee names its reason.
	run("choosing the unknown judge", chromedp.SetValue(css("#war-judge"), "unknown"))
	send("sending the badly signed warrant")
	refusals, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#war-trustees li")].map(li => li.className + ": " + li.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(refusals) != n {
		t.Errorf("%d decisions shown, want %d", len(refusals), n)
	}
	for _, r := range refusals {
		if !strings.HasPrefix(r, "refused: ") || !strings.Contains(r, "unknown-judge") {
			t.Errorf("decision %q, want an unknown-judge refusal", r)
		}
	}
	shot("refusal.png")
	run("back to the demo's warrant", chromedp.SetValue(css("#war-judge"), "trusted"),
		chromedp.SetValue(css("#war-from"), tl.Warrant.From.Format("2006-01-02")))

	// Kill n−t trustees: the decryption still works; one more and it fails,
	// naming who is missing.
	kill := func(i int) {
		t.Helper()
		sel := fmt.Sprintf(`#cards .card[data-trustee="trustee-%d"]`, i)
		run(fmt.Sprintf("killing trustee-%d", i), chromedp.Click(css(sel+` button[data-action="kill"]`)), chromedp.WaitReady(css(sel+".down")))
	}
	rerun := func() string {
		t.Helper()
		run("rerunning", eval(`document.querySelector("#warrant").removeAttribute("data-covered")`),
			chromedp.Click(css("#rerun")), chromedp.WaitReady(css(`#warrant[data-covered]`)))
		return text("#rerun-outcome")
	}
	for i := n; i > th; i-- {
		kill(i)
	}
	if out := rerun(); !strings.Contains(out, fmt.Sprintf("read all %d", rep.InScope)) {
		t.Errorf("with %d trustees killed: %q", n-th, out)
	}
	same("granted with n−t killed", atoi(t, attr("#trustees", "data-granted")), th)
	kill(th)
	out := rerun()
	if !strings.Contains(out, "Decryption failed") || !strings.Contains(out, fmt.Sprintf("trustee-%d is not answering", th)) {
		t.Errorf("with %d trustees killed: %q", n-th+1, out)
	}
	same("read with one too many killed", atoi(t, attr("#warrant", "data-recovered")), 0)
	shot("killed.png")
	for i := th; i <= n; i++ {
		sel := fmt.Sprintf(`#cards .card[data-trustee="trustee-%d"]`, i)
		run(fmt.Sprintf("restarting trustee-%d", i), chromedp.Click(css(sel+` button[data-action="restart"]`)), chromedp.WaitReady(css(sel+":not(.down)")))
	}
	var procs []demo.TrusteeStatus
	api("GET", "/api/trustees", nil, &procs)
	for _, p := range procs {
		if !p.Running {
			t.Errorf("%s is not running after its restart", p.Name)
		}
	}
	if out := rerun(); !strings.Contains(out, fmt.Sprintf("%d of %d trustees granted", n, n)) {
		t.Errorf("after the restarts: %q", out)
	}
	run("opening the messages", chromedp.Click(css("#war-messages-box summary")))
	if s := text("#war-messages li"); !strings.Contains(s, " → ") {
		t.Errorf("first message shown: %q", s)
	}

	// Epochs: every disk read now; destroyed epochs open nothing.
	run("colluding", eval(`document.querySelector("#ep-table tbody").replaceChildren()`),
		chromedp.Click(css("#collude")), chromedp.WaitReady(css(`#ep-table tbody tr`)))
	var eps []demo.EpochStatus
	api("GET", "/api/epochs", nil, &eps)
	destroyed := 0
	for _, e := range eps {
		row := fmt.Sprintf(`#ep-table tr[data-epoch="%d"]`, e.Epoch)
		same(fmt.Sprintf("epoch %d opened by all", e.Epoch), atoi(t, text(row+" td.opened")), e.OpenedByAll)
		if len(e.HeldBy) == 0 {
			destroyed++
			if cls := attr(row, "class"); cls != "destroyed" || e.OpenedByAll != 0 {
				t.Errorf("epoch %d: class %q, opened %d; want destroyed and 0", e.Epoch, cls, e.OpenedByAll)
			}
		}
	}
	if destroyed == 0 {
		t.Errorf("no epoch destroyed under retention (kept %v)", cli.rep.RetainedEpochs)
	}

	// The audit logs, verified in the browser.
	run("refreshing the logs", eval(`document.querySelector("#audit").removeAttribute("data-refreshed")`),
		chromedp.Click(css("#audit-refresh")), chromedp.WaitReady(css(`#audit[data-refreshed]`)))
	run("verifying", chromedp.Click(css(`#logs .log[data-trustee="trustee-1"] button[data-action="verify"]`)),
		chromedp.WaitReady(css(`#logs .log[data-trustee="trustee-1"] .verdict[data-ok]`)))
	if ok, v := attr(`#logs .log[data-trustee="trustee-1"] .verdict`, "data-ok"), text(`#logs .log[data-trustee="trustee-1"] .verdict`); ok != "true" || !strings.Contains(v, "verified in this browser") || !strings.Contains(v, "Server’s own check: ok") {
		t.Errorf("verify: data-ok=%s %q", ok, v)
	}
	// Any record can be checked: trustee-2's first.
	t2 := `#logs .log[data-trustee="trustee-2"]`
	run("verifying record 0", chromedp.SetValue(css(t2+` input[type="number"]`), "0"), chromedp.Click(css(t2+` button[data-action="verify"]`)),
		chromedp.WaitReady(css(t2+` .verdict[data-ok]`)))
	if ok, v := attr(t2+` .verdict`, "data-ok"), text(t2+` .verdict`); ok != "true" || !strings.Contains(v, "record 0 of") {
		t.Errorf("verify record 0: data-ok=%s %q", ok, v)
	}
	// The browser's check is real: one flipped bit in the record fails it.
	checks, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`(async () => {
		const inc = await api("GET", "/api/audit/1/inclusion/0");
		const root = b64(inc.head.split("\n")[2]);
		const rec = b64(inc.record);
		const good = await verifyInclusion(rec, inc.index, inc.size, inc.proof.map(b64), root);
		rec[rec.length - 2] ^= 1;
		const bad = await verifyInclusion(rec, inc.index, inc.size, inc.proof.map(b64), root);
		return [good, bad];
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || !checks[0] || checks[1] {
		t.Errorf("in-browser inclusion check of an honest record, then a tampered one: %v, want [true false]", checks)
	}

	// The Clipper race: the first is the report's.
	run("racing", chromedp.Click(css("#race")), chromedp.WaitReady(css(`#clipper[data-leaf]`)))
	same("Clipper tries", atoi(t, attr("#clipper", "data-leaf")), cli.rep.LEAFForgeryTries)
	same("keyquorum forgeries accepted", atoi(t, attr("#clipper", "data-accepted")), cli.rep.ForgedEnvelopes.Accepted)

	page := shot("page-1280.png")
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "doc", "demo-web.png"), page, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	run("scrolling up", eval(`window.scrollTo(0, 0)`))
	shotOf("phone-top.png", chromedp.CaptureScreenshot())
	shotOf("phone-compromise.png", chromedp.Screenshot(css("#compromise")))
	shotOf("phone-warrant.png", chromedp.Screenshot(css("#warrant")))
	shotOf("phone-audit.png", chromedp.Screenshot(css("#audit")))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || overflow {
		t.Errorf("the page is wider than a phone's screen")
	}
	t.Logf("screenshots in %s", shots)

	stop()
	if !strings.Contains(stderr.String(), "stopped the trustees.") {
		t.Errorf("demo --web did not say it stopped the trustees; stderr:\n%s", stderr.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("demo --web left %s in its temporary directory", left[0].Name())
	}
}

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
