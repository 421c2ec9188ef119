package shares

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// splitBytes splits data t-of-n and returns the n share files.
func splitBytes(t testing.TB, data []byte, th, n int, seed byte) [][]byte {
	t.Helper()
	bufs := make([]*bytes.Buffer, n)
	outs := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		outs[i] = bufs[i]
	}
	if err := SplitFile(bytes.NewReader(data), th, n, testRand(seed), outs); err != nil {
		t.Fatal(err)
	}
	files := make([][]byte, n)
	for i, b := range bufs {
		files[i] = b.Bytes()
	}
	return files
}

// combine reads the given share files and combines them.
func combine(files ...[]byte) ([]byte, error) {
	var sfs []*ShareFile
	for _, f := range files {
		sf, err := ReadShareFile(bytes.NewReader(f))
		if err != nil {
			return nil, err
		}
		sfs = append(sfs, sf)
	}
	var out bytes.Buffer
	err := CombineFiles(sfs, &out)
	return out.Bytes(), err
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	testRand(seed).Read(b)
	return b
}

// splitFile separates a share file into header and decoded ciphertext.
func splitFile(t testing.TB, f []byte) (hdr []byte, ct []byte) {
	t.Helper()
	i := bytes.Index(f, []byte("\n\n"))
	hdr = f[:i+2]
	ct, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(f[i+2:]), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return hdr, ct
}

// joinFile is the inverse of splitFile.
func joinFile(hdr, ct []byte) []byte {
	var b bytes.Buffer
	b.Write(hdr)
	e := newLineEncoder(&b)
	e.Write(ct)
	e.Close()
	return b.Bytes()
}

// setHeader re-marshals f's header after edit changes it.
func setHeader(t testing.TB, f []byte, edit func(*FileHeader)) []byte {
	t.Helper()
	hdr, ct := splitFile(t, f)
	h, err := ParseFileHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	edit(h)
	return joinFile(h.Marshal(), ct)
}

func TestFileRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 47, 48, 49, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 3*ChunkSize + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := randomBytes(size, byte(size))
			files := splitBytes(t, data, 3, 5, byte(size))
			for k := 3; k <= 5; k++ {
				subsets(5, k, func(idx []int) {
					var in [][]byte
					for _, i := range idx {
						in = append(in, files[i])
					}
					got, err := combine(in...)
					if err != nil {
						t.Fatalf("shares %v: %v", idx, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("shares %v: restored %d bytes, not the original %d", idx, len(got), len(data))
					}
				})
			}
			for i, f := range files {
				hdr, ct := splitFile(t, f)
				if int64(len(ct)) != ciphertextSize(int64(size)) {
					t.Fatalf("ciphertext of %d bytes, want %d", len(ct), ciphertextSize(int64(size)))
				}
				h, err := ParseFileHeader(hdr)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(h.Marshal(), hdr) {
					t.Fatal("Marshal(Parse(header)) != header")
				}
				if h.Share.Index != i+1 || h.Threshold() != 3 || h.Total != 5 || h.Size != int64(size) || h.CiphertextHash != sha256.Sum256(ct) {
					t.Fatalf("header fields wrong: %+v", h)
				}
				if !bytes.Equal(joinFile(hdr, ct), f) {
					t.Fatal("ciphertext encoding is not canonical")
				}
			}
		})
	}
}

func TestFileOneOfOne(t *testing.T) {
	data := []byte("one share file is the whole key\n")
	files := splitBytes(t, data, 1, 1, 1)
	got, err := combine(files[0])
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("1-of-1: %v", err)
	}
}

func TestFileHeaderLooksRight(t *testing.T) {
	files := splitBytes(t, []byte("hello\n"), 2, 3, 2)
	hdr, _ := splitFile(t, files[1])
	lines := strings.Split(string(hdr), "\n")
	if lines[0] != "keyquorum share file v1" {
		t.Fatalf("first line %q", lines[0])
	}
	text := string(hdr)
	for _, want := range []string{"# This is share 2 of 3", "Any 2 of the 3 share files", "\nindex: 2\n", "\nthreshold: 2\n", "\ntotal: 3\n", "\nsize: 6\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("header lacks %q:\n%s", want, text)
		}
	}
}

func TestFileRefusals(t *testing.T) {
	data := randomBytes(3*ChunkSize+100, 10)
	files := splitBytes(t, data, 3, 5, 10)
	otherSplit := splitBytes(t, data, 3, 5, 11)

	// flipCiphertext flips one bit in chunk k of a share file's ciphertext.
	flipCiphertext := func(f []byte, k int) []byte {
		hdr, ct := splitFile(t, f)
		ct = append([]byte(nil), ct...)
		ct[k*(ChunkSize+tagSize)+5] ^= 1
		return joinFile(hdr, ct)
	}

	for _, tc := range []struct {
		name  string
		files [][]byte
		check func(error) bool
		want  string
	}{
		{
			name:  "too few",
			files: [][]byte{files[0], files[3]},
			check: func(err error) bool { return errors.Is(err, ErrTooFewShares) },
			want:  "2 given, 3 needed",
		},
		{
			name:  "none",
			files: nil,
			check: func(err error) bool { return errors.Is(err, ErrTooFewShares) },
			want:  "no share files",
		},
		{
			name: "tampered share",
			files: [][]byte{files[0], setHeader(t, files[1], func(h *FileHeader) {
				h.Share.Value = h.Share.Value.Clone().Add(h.Share.Value, h.Share.Value)
			}), files[2]},
			check: func(err error) bool {
				var e *InconsistentShareError
				return errors.As(err, &e) && e.Index == 2
			},
			want: "share 2 does not match",
		},
		{
			name:  "tampered ciphertext in the first share given",
			files: [][]byte{flipCiphertext(files[4], 2), files[0], files[2]},
			check: func(err error) bool {
				var e *AuthenticationError
				return errors.As(err, &e) && e.Index == 5 && e.Chunk == 2 && errors.Is(err, ErrAuthentication)
			},
			want: "share 5 failed authentication at chunk 2",
		},
		{
			name:  "tampered ciphertext in another share",
			files: [][]byte{files[0], files[2], flipCiphertext(files[4], 3)},
			check: func(err error) bool {
				var e *AuthenticationError
				return errors.As(err, &e) && e.Index == 5 && e.Chunk == 3
			},
			want: "share 5 failed authentication at chunk 3",
		},
		{
			name:  "truncated at a line",
			files: [][]byte{files[0], cutLines(files[1], 10), files[2]},
			check: func(err error) bool {
				var e *TruncatedError
				return errors.As(err, &e) && e.Index == 2 && errors.Is(err, ErrTruncated)
			},
			want: "share 2 is truncated",
		},
		{
			name:  "truncated mid-line",
			files: [][]byte{files[0], files[1], files[2][:len(files[2])-1000]},
			check: func(err error) bool {
				var e *TruncatedError
				return errors.As(err, &e) && e.Index == 3
			},
			want: "share 3 is truncated",
		},
		{
			name:  "truncated to the header",
			files: [][]byte{files[0], files[1][:bytes.Index(files[1], []byte("\n\n"))+2], files[2]},
			check: func(err error) bool {
				var e *TruncatedError
				return errors.As(err, &e) && e.Index == 2 && e.Have == 0
			},
			want: "ends after 0 of",
		},
		{
			name:  "appended line",
			files: [][]byte{files[0], files[1], append(append([]byte(nil), files[2]...), "AAAA\n"...)},
			check: func(err error) bool {
				var e *CiphertextFormatError
				return errors.As(err, &e) && e.Index == 3
			},
			want: "share 3 is malformed",
		},
		{
			name:  "appended without newline",
			files: [][]byte{files[0], append(append([]byte(nil), files[1]...), "junk"...), files[2]},
			check: func(err error) bool {
				var e *CiphertextFormatError
				return errors.As(err, &e) && e.Index == 2
			},
			want: "share 2 is malformed",
		},
		{
			name:  "two different splits",
			files: [][]byte{files[0], files[1], otherSplit[2]},
			check: func(err error) bool {
				var e *MismatchedSplitError
				return errors.As(err, &e) && e.Index == 1 && e.OtherIndex == 3 && e.Field == "split-id" && errors.Is(err, ErrMismatchedSplit)
			},
			want: "share 1 and share 3 come from different splits",
		},
		{
			name:  "same index from two splits",
			files: [][]byte{files[0], files[1], otherSplit[1]},
			check: func(err error) bool { return errors.Is(err, ErrMismatchedSplit) },
			want:  "different splits",
		},
		{
			name:  "duplicate index",
			files: [][]byte{files[0], files[3], files[3]},
			check: func(err error) bool {
				var e *DuplicateIndexError
				return errors.As(err, &e) && e.Index == 4
			},
			want: "share 4 given twice",
		},
		{
			name:  "header altered in one file",
			files: [][]byte{files[0], files[1], setHeader(t, files[2], func(h *FileHeader) { h.Size-- })},
			check: func(err error) bool {
				var e *MismatchedSplitError
				return errors.As(err, &e) && e.Field == "size"
			},
			want: "different size",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := combine(tc.files...)
			if err == nil {
				t.Fatal("combine succeeded")
			}
			if !tc.check(err) {
				t.Fatalf("wrong error type: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "shares: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if bytes.Equal(out, data) {
				t.Fatal("the whole file came out despite the error")
			}
		})
	}
}

// cutLines removes the last k lines of a share file.
func cutLines(f []byte, k int) []byte {
	for ; k > 0; k-- {
		f = f[:bytes.LastIndexByte(f[:len(f)-1], '\n')+1]
	}
	return f
}

// TestFileStreamAttacks edits the ciphertext consistently in every share
// file, as someone holding all the copies could, and checks the STREAM
// construction catches it.
func TestFileStreamAttacks(t *testing.T) {
	data := randomBytes(3*ChunkSize+100, 12)
	files := splitBytes(t, data, 2, 3, 12)
	cl := ChunkSize + tagSize
	edit := func(f func(ct []byte) []byte, size int64) [][]byte {
		var out [][]byte
		for _, file := range files[:2] {
			hdr, ct := splitFile(t, file)
			ct2 := f(append([]byte(nil), ct...))
			h, _ := ParseFileHeader(hdr)
			h.Size = size
			h.CiphertextHash = sha256.Sum256(ct2)
			out = append(out, joinFile(h.Marshal(), ct2))
		}
		return out
	}
	full := int64(len(data))
	for _, tc := range []struct {
		name  string
		files [][]byte
		chunk int
	}{
		{"chunks swapped", edit(func(ct []byte) []byte {
			a := append([]byte(nil), ct[:cl]...)
			copy(ct[:cl], ct[cl:2*cl])
			copy(ct[cl:2*cl], a)
			return ct
		}, full), 0},
		{"chunk repeated", edit(func(ct []byte) []byte {
			copy(ct[2*cl:3*cl], ct[cl:2*cl])
			return ct
		}, full), 2},
		{"last chunk dropped, size adjusted", edit(func(ct []byte) []byte {
			return ct[:3*cl]
		}, 3*ChunkSize), 2},
		{"chunk appended, size adjusted", edit(func(ct []byte) []byte {
			return append(ct, ct[:cl]...)
		}, full+ChunkSize), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := combine(tc.files...)
			var e *AuthenticationError
			if !errors.As(err, &e) || e.Chunk != tc.chunk {
				t.Fatalf("got %v, want authentication failure at chunk %d", err, tc.chunk)
			}
		})
	}
	t.Run("hash line altered everywhere", func(t *testing.T) {
		var in [][]byte
		for _, f := range files[:2] {
			in = append(in, setHeader(t, f, func(h *FileHeader) { h.CiphertextHash[0] ^= 1 }))
		}
		_, err := combine(in...)
		if !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), "ciphertext-sha256") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestFileHeaderRefusals(t *testing.T) {
	files := splitBytes(t, []byte("some secret text\n"), 2, 3, 13)
	hdr, _ := splitFile(t, files[0])
	h := string(hdr)
	replace := func(old, new string) string {
		if !strings.Contains(h, old) {
			t.Fatalf("header lacks %q", old)
		}
		return strings.Replace(h, old, new, 1)
	}
	line := func(key string) string {
		i := strings.Index(h, "\n"+key+": ")
		return h[i+1 : i+1+strings.IndexByte(h[i+1:], '\n')+1]
	}
	for _, tc := range []struct{ name, hdr, want string }{
		{"not a share file", "hello\n\n", "not a keyquorum share file"},
		{"newer version", replace("file v1", "file v2"), "reads only"},
		{"CRLF", strings.ReplaceAll(h, "\n", "\r\n") + "\n\n", "line endings"},
		{"unknown key", replace("index: 1\n", "index: 1\ncolour: blue\n"), `unknown key "colour"`},
		{"repeated key", replace("index: 1\n", "index: 1\nindex: 1\n"), `key "index" repeated`},
		{"reordered keys", replace(line("threshold")+line("total"), line("total")+line("threshold")), "out of order"},
		{"missing key", replace(line("size"), ""), "out of order"},
		{"missing last key", replace(line("ciphertext-sha256"), ""), `lacks the "ciphertext-sha256" line`},
		{"edited comment", replace("Do not edit", "Please edit"), "differs from the standard text"},
		{"added comment", replace("# This", "# mine\n# This"), "differs from the standard text"},
		{"leading zero", replace("index: 1\n", "index: 01\n"), "leading zeros"},
		{"index above total", replace("index: 1\n", "index: 4\n"), "more than the total"},
		{"threshold above total", replace("threshold: 2\n", "threshold: 4\n"), "more than the total"},
		{"threshold not the commitment's", replace("threshold: 2\n", "threshold: 1\n"), "commitment has 2 points"},
		{"uppercase hex", replace(line("split-id"), "split-id: "+strings.ToUpper(line("split-id")[10:])), "lowercase hex"},
		{"extra space", replace("index: 1", "index:  1"), "index"},
		{"no blank line", h[:len(h)-1], "empty line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFileHeader([]byte(tc.hdr))
			if err == nil || !strings.HasPrefix(err.Error(), "shares: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			_, err = ReadShareFile(strings.NewReader(tc.hdr + "AAAA\n"))
			if err == nil {
				t.Fatal("ReadShareFile accepted it")
			}
		})
	}
	for _, in := range []string{"", "keyquorum share file v1\n", "garbage"} {
		if _, err := ReadShareFile(strings.NewReader(in)); err == nil || !strings.HasPrefix(err.Error(), "shares: ") {
			t.Errorf("ReadShareFile(%q): got %v", in, err)
		}
	}
}

func FuzzParseFileHeader(f *testing.F) {
	for i, th := range []int{1, 2, 3} {
		files := splitBytes(f, []byte("fuzz"), th, 3, byte(20+i))
		hdr, _ := splitFile(f, files[0])
		f.Add(hdr)
	}
	f.Add([]byte("keyquorum share file v1\n\n"))
	f.Add([]byte("keyquorum share file v1\nindex: 1\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseFileHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Marshal(), b) {
			t.Fatalf("Marshal(Parse(b)) != b:\n%q\n%q", b, h.Marshal())
		}
		if h.Share.Index < 1 || h.Share.Index > h.Total || h.Threshold() > h.Total {
			t.Fatalf("accepted inconsistent numbers: %+v", h)
		}
	})
}

// changingReader returns different bytes on its second pass, like a file
// someone writes to while it is being split.
type changingReader struct {
	*bytes.Reader
	data  []byte
	seeks int
}

func (c *changingReader) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		c.seeks++
		if c.seeks == 1 {
			c.data[len(c.data)-1] ^= 1
		}
	}
	return c.Reader.Seek(off, whence)
}

func TestSplitFileInputChanged(t *testing.T) {
	data := randomBytes(ChunkSize+10, 14)
	cr := &changingReader{Reader: bytes.NewReader(data), data: data}
	outs := []io.Writer{io.Discard, io.Discard}
	err := SplitFile(cr, 2, 2, testRand(14), outs)
	if err == nil || !strings.Contains(err.Error(), "changed while it was read") {
		t.Fatalf("got %v", err)
	}
	if err := SplitFile(bytes.NewReader(data), 2, 3, testRand(14), outs); err == nil {
		t.Fatal("SplitFile accepted 2 outputs for 3 shares")
	}
}

// TestFileLarge splits a 50 MB file into five share files on disk and
// restores it from three, comparing SHA-256 hashes, and checks that memory
// use does not grow with the file: the bytes allocated while splitting and
// while combining stay far below the file size.
func TestFileLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB round trip skipped in -short mode")
	}
	const size = 50 << 20
	dir := t.TempDir()
	in := filepath.Join(dir, "big.bin")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	wantHash := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, wantHash), io.LimitReader(testRand(15), size)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}

	var outs []io.Writer
	var outFiles []*os.File
	for i := 1; i <= 5; i++ {
		o, err := os.Create(filepath.Join(dir, fmt.Sprintf("big.share-%d-of-5", i)))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
		outFiles = append(outFiles, o)
	}
	allocated := func(f func() error) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := f(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	splitAlloc := allocated(func() error { return SplitFile(f, 3, 5, testRand(15), outs) })
	f.Close()
	for _, o := range outFiles {
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	}

	var sfs []*ShareFile
	for _, i := range []int{5, 2, 3} {
		o, err := os.Open(filepath.Join(dir, fmt.Sprintf("big.share-%d-of-5", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		sf, err := ReadShareFile(o)
		if err != nil {
			t.Fatal(err)
		}
		sfs = append(sfs, sf)
	}
	gotHash := sha256.New()
	var n countingWriter
	combineAlloc := allocated(func() error { return CombineFiles(sfs, io.MultiWriter(gotHash, &n)) })
	if n != size || !bytes.Equal(gotHash.Sum(nil), wantHash.Sum(nil)) {
		t.Fatalf("restored %d bytes with SHA-256 %x; want %d bytes with %x", n, gotHash.Sum(nil), size, wantHash.Sum(nil))
	}
	t.Logf("allocated while splitting: %d KiB; while combining: %d KiB", splitAlloc>>10, combineAlloc>>10)
	const limit = 8 << 20
	if splitAlloc > limit || combineAlloc > limit {
		t.Fatalf("allocated %d and %d bytes for a %d-byte file: memory grows with the file", splitAlloc, combineAlloc, size)
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func BenchmarkSplitFile(b *testing.B) {
	data := randomBytes(4<<20, 16)
	outs := []io.Writer{io.Discard, io.Discard, io.Discard, io.Discard, io.Discard}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := SplitFile(bytes.NewReader(data), 3, 5, testRand(16), outs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombineFiles(b *testing.B) {
	data := randomBytes(4<<20, 17)
	files := splitBytes(b, data, 3, 5, 17)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := combine(files[:3]...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFileBodyCanonical checks that the ciphertext has one encoding only:
// non-zero padding bits, a shortened full line or a carriage return are
// refused even where the bytes they decode to would be right.
func TestFileBodyCanonical(t *testing.T) {
	files := splitBytes(t, randomBytes(100, 18), 2, 2, 18) // 116 ciphertext bytes: lines of 64, 64, 28 characters
	hdr, ct := splitFile(t, files[0])
	body := string(joinFile(hdr, ct)[len(hdr):])
	lines := strings.SplitAfter(body, "\n")
	last := lines[2]
	if len(last) != 29 || !strings.HasSuffix(last, "=\n") {
		t.Fatalf("unexpected last line %q", last)
	}
	// The last line holds 20 bytes = 6·3 + 2: its final quantum is three
	// characters and "=", and the third character's two low bits are
	// padding.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	c := strings.IndexByte(alphabet, last[26])
	padded := last[:26] + string(alphabet[c^1]) + last[27:]
	for name, b := range map[string]string{
		"non-zero padding bits": lines[0] + lines[1] + padded,
		"line split in two":     lines[0][:32] + "\n" + lines[0][32:] + lines[1] + last,
		"carriage return":       lines[0][:63] + "\r" + lines[0][63:] + lines[1] + last,
	} {
		_, err := combine(append(append([]byte(nil), hdr...), b...), files[1])
		var fe *CiphertextFormatError
		if !errors.As(err, &fe) || fe.Index != 1 {
			t.Errorf("%s: got %v, want a CiphertextFormatError for share 1", name, err)
		}
	}
	if _, err := combine(files...); err != nil {
		t.Fatal(err)
	}
}
