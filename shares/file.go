package shares

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
	"golang.org/x/crypto/chacha20poly1305"
)

// FileLabel is the HKDF info label of the key that encrypts a split file.
const FileLabel = "keyquorum/v1/shares/file"

// ChunkSize is the number of plaintext bytes in each encrypted chunk but
// the last.
const ChunkSize = 64 << 10

const tagSize = chacha20poly1305.Overhead

// numChunks returns how many chunks a plaintext of size bytes takes: at
// least one, so that even an empty file has a final, authenticated chunk.
func numChunks(size int64) int64 {
	if size == 0 {
		return 1
	}
	return (size + ChunkSize - 1) / ChunkSize
}

// ciphertextSize returns the ciphertext length for a plaintext of size
// bytes.
func ciphertextSize(size int64) int64 { return size + numChunks(size)*tagSize }

// The file is encrypted in chunks with the STREAM construction (Hoang,
// Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and
// its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), as age does. This part
// stays hand-written: kyber's share package splits scalars, not files, and
// kyber has no streaming AEAD; golang.org/x/crypto offers the
// ChaCha20-Poly1305 AEAD used for each chunk but no chunking, and age's
// own STREAM lives in an internal package that cannot be imported.

// chunkNonce is the STREAM nonce of chunk k: an 11-byte big-endian counter
// and a last-chunk flag.
func chunkNonce(k int64, final bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[3:11], uint64(k))
	if final {
		n[11] = 1
	}
	return n
}

// fileAEAD derives the chunk cipher of a split from its secret, split id,
// total and commitment.
func fileAEAD(secret kyber.Scalar, splitID [32]byte, total int, c *Commitment) (cipher.AEAD, error) {
	info := FileLabel + "\x00" + string([]byte{byte(total)}) + string(c.Marshal())
	key, err := hkdf.Key(sha256.New, group.ScalarBytes(secret), splitID[:], info, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("shares: deriving the file key: %w", err)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("shares: setting up the file cipher: %w", err)
	}
	return aead, nil
}

// encryptStream encrypts everything r yields into STREAM chunks written to
// w and returns the plaintext size.
func encryptStream(aead cipher.AEAD, r io.Reader, w io.Writer) (int64, error) {
	br := bufio.NewReaderSize(r, ChunkSize)
	pt := make([]byte, ChunkSize)
	ct := make([]byte, 0, ChunkSize+tagSize)
	var size int64
	for k := int64(0); ; k++ {
		n, err := io.ReadFull(br, pt)
		final := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			final = true
		case err != nil:
			return 0, fmt.Errorf("shares: reading the file to split: %w", err)
		default:
			if _, err := br.Peek(1); err == io.EOF {
				final = true
			} else if err != nil {
				return 0, fmt.Errorf("shares: reading the file to split: %w", err)
			}
		}
		if n == 0 && k > 0 {
			return 0, errors.New("shares: the file to split got shorter while it was read; split it again once nothing is writing to it")
		}
		size += int64(n)
		if size > maxFileSize {
			return 0, fmt.Errorf("shares: the file to split is over %d bytes, more than a share file can announce", int64(maxFileSize))
		}
		ct = aead.Seal(ct[:0], chunkNonce(k, final), pt[:n], nil)
		if _, err := w.Write(ct); err != nil {
			return 0, fmt.Errorf("shares: writing share files: %w", err)
		}
		if final {
			return size, nil
		}
	}
}

// SplitFile splits the rest of r t-of-n into n share files, written to
// outs[0] (share 1) to outs[n−1] (share n), any t of which restore it with
// [CombineFiles]. It draws the secret, the polynomial and the split id from
// rand. It reads r twice, seeking back to where it started, and fails if r
// changed in between. If it fails, whatever it wrote to outs is garbage.
func SplitFile(r io.ReadSeeker, t, n int, rand io.Reader, outs []io.Writer) error {
	if err := checkSplitParams(t, n); err != nil {
		return err
	}
	if len(outs) != n {
		return fmt.Errorf("shares: %d outputs for %d share files; pass one writer per share", len(outs), n)
	}
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("shares: the file to split must be seekable: %w", err)
	}
	secret, err := group.RandomScalar(rand)
	if err != nil {
		return fmt.Errorf("shares: drawing the file secret: %w", err)
	}
	shares, c, err := Split(secret, t, n, rand)
	if err != nil {
		return err
	}
	var splitID [32]byte
	if _, err := io.ReadFull(rand, splitID[:]); err != nil {
		return fmt.Errorf("shares: drawing the split id: %w", err)
	}
	aead, err := fileAEAD(secret, splitID, n, c)
	if err != nil {
		return err
	}

	// Pass 1: size and hash of the ciphertext, for the headers.
	h1 := sha256.New()
	size, err := encryptStream(aead, r, h1)
	if err != nil {
		return err
	}
	var sum [32]byte
	h1.Sum(sum[:0])

	// Pass 2: the same ciphertext, written after the headers.
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("shares: rewinding the file to split: %w", err)
	}
	for i, s := range shares {
		hdr := &FileHeader{SplitID: splitID, Share: s, Total: n, Commitment: c, Size: size, CiphertextHash: sum}
		if _, err := outs[i].Write(hdr.Marshal()); err != nil {
			return fmt.Errorf("shares: writing share file %d: %w", s.Index, err)
		}
	}
	enc := newLineEncoder(io.MultiWriter(outs...))
	h2 := sha256.New()
	size2, err := encryptStream(aead, r, io.MultiWriter(enc, h2))
	if err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("shares: writing share files: %w", err)
	}
	var sum2 [32]byte
	h2.Sum(sum2[:0])
	if size2 != size || sum2 != sum {
		return errors.New("shares: the file to split changed while it was read; split it again once nothing is writing to it")
	}
	return nil
}

// CombineFiles restores the file split into files, writing it to w. The
// files must all come from one split (same header but for index and
// share), hold distinct shares that match the commitment, and be at least
// the threshold in number. It reads every file's ciphertext copy, and
// refuses if any copy differs from the others, is cut short or fails
// authentication, naming the share at fault.
//
// Each chunk is written to w only once it has authenticated, and the last
// one only once everything has been checked, but if CombineFiles returns an
// error, what it wrote is incomplete and must be thrown away. The files
// cannot be used again afterwards.
func CombineFiles(files []*ShareFile, w io.Writer) error {
	if len(files) == 0 {
		return fmt.Errorf("%w: no share files given; pass at least the threshold number of share files", ErrTooFewShares)
	}
	for _, f := range files {
		if f == nil || f.Header == nil || f.body == nil {
			return errors.New("shares: a share file was not read with ReadShareFile, or was already used; read it again")
		}
	}
	first := files[0].Header
	for _, f := range files[1:] {
		if field := headerDiff(first, f.Header); field != "" {
			return &MismatchedSplitError{Index: first.Share.Index, OtherIndex: f.Header.Share.Index, Field: field}
		}
	}
	shares := make([]Share, len(files))
	for i, f := range files {
		shares[i] = f.Header.Share
	}
	secret, err := RecoverWithCommitment(shares, first.Commitment)
	if err != nil {
		return err
	}
	aead, err := fileAEAD(secret, first.SplitID, first.Total, first.Commitment)
	if err != nil {
		return err
	}

	size := first.Size
	chunks := numChunks(size)
	ctLen := ciphertextSize(size)
	bodies := make([]*bodyReader, len(files))
	bufs := make([][]byte, len(files))
	for j, f := range files {
		bodies[j] = &bodyReader{f: f, br: f.body, line: f.lines, want: ctLen}
		bufs[j] = make([]byte, ChunkSize+tagSize)
		f.body = nil // single use
	}
	pt := make([]byte, 0, ChunkSize)
	hash := sha256.New()
	var done int64 // ciphertext bytes read and authenticated
	for k := int64(0); k < chunks; k++ {
		l := ChunkSize + tagSize
		final := k == chunks-1
		if final {
			l = int(size-k*ChunkSize) + tagSize
		}
		for j, b := range bodies {
			n, err := io.ReadFull(b, bufs[j][:l])
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return &TruncatedError{Index: b.index(), Have: done + int64(n), Want: ctLen}
			}
			if err != nil {
				return err
			}
		}
		pt, err = aead.Open(pt[:0], chunkNonce(k, final), bufs[0][:l], nil)
		if err != nil {
			return &AuthenticationError{Index: bodies[0].index(), Chunk: int(k)}
		}
		for j := 1; j < len(bodies); j++ {
			// A copy that differs from one that authenticated cannot
			// authenticate itself (short of a Poly1305 forgery).
			if !bytes.Equal(bufs[j][:l], bufs[0][:l]) {
				return &AuthenticationError{Index: bodies[j].index(), Chunk: int(k)}
			}
		}
		hash.Write(bufs[0][:l])
		if final {
			// Every check that remains happens before the last chunk is
			// written, so a failed combine never delivers the whole file.
			for _, b := range bodies {
				if err := b.atEnd(); err != nil {
					return err
				}
			}
			var sum [32]byte
			hash.Sum(sum[:0])
			if sum != first.CiphertextHash {
				// Every chunk authenticated, so the ciphertext is genuine
				// and the header line was changed, in every file alike.
				return fmt.Errorf("%w: the ciphertext-sha256 line of the share files does not match their ciphertext, which is genuine: the headers were altered; use unmodified share files", ErrAuthentication)
			}
		}
		if _, err := w.Write(pt); err != nil {
			return fmt.Errorf("shares: writing the restored file: %w", err)
		}
		done += int64(l)
	}
	return nil
}

// headerDiff returns the name of the first header field, other than index
// and share, in which a and b differ, or "".
func headerDiff(a, b *FileHeader) string {
	switch {
	case a.SplitID != b.SplitID:
		return "split-id"
	case a.Threshold() != b.Threshold():
		return "threshold"
	case a.Total != b.Total:
		return "total"
	case !bytes.Equal(a.Commitment.Marshal(), b.Commitment.Marshal()):
		return "commitment"
	case a.Size != b.Size:
		return "size"
	case a.CiphertextHash != b.CiphertextHash:
		return "ciphertext-sha256"
	}
	return ""
}

// lineEncoder writes base64 in lines of b64LineLen characters, the last
// line padded, buffering a few lines at a time.
type lineEncoder struct {
	w       io.Writer
	partial []byte // < 48 bytes not yet encoded
	out     []byte
}

const lineBytes = b64LineLen / 4 * 3 // 48 bytes per full line

func newLineEncoder(w io.Writer) *lineEncoder {
	return &lineEncoder{w: w, partial: make([]byte, 0, lineBytes), out: make([]byte, 0, 64<<10+b64LineLen+1)}
}

func (e *lineEncoder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(e.partial[len(e.partial):lineBytes], p)
		e.partial = e.partial[:len(e.partial)+k]
		p = p[k:]
		if len(e.partial) == lineBytes {
			e.out = base64.StdEncoding.AppendEncode(e.out, e.partial)
			e.out = append(e.out, '\n')
			e.partial = e.partial[:0]
			if len(e.out) >= 64<<10 {
				if err := e.flush(); err != nil {
					return 0, err
				}
			}
		}
	}
	return n, nil
}

func (e *lineEncoder) flush() error {
	_, err := e.w.Write(e.out)
	e.out = e.out[:0]
	return err
}

// Close writes the last, possibly padded, line.
func (e *lineEncoder) Close() error {
	if len(e.partial) > 0 {
		e.out = base64.StdEncoding.AppendEncode(e.out, e.partial)
		e.out = append(e.out, '\n')
		e.partial = e.partial[:0]
	}
	return e.flush()
}

// bodyReader decodes the base64 ciphertext of a share file, strictly: full
// lines of b64LineLen characters, then at most one shorter or padded last
// line, then the end of the file. A line cut off without its newline counts
// as missing, so a file cut short reads as truncated.
type bodyReader struct {
	f       *ShareFile
	line    int // line number in the file of the last line read
	buf     [lineBytes]byte
	pending []byte
	want    int64 // ciphertext length the header announces
	got     int64 // ciphertext bytes decoded so far
	last    bool  // read the last line
	cut     bool  // the file ends in a line without a newline
	err     error
	br      *bufio.Reader
}

func (r *bodyReader) index() int { return r.f.Header.Share.Index }

func (r *bodyReader) formatError(detail string) error {
	return &CiphertextFormatError{Index: r.index(), Line: r.line, Detail: detail}
}

func (r *bodyReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.fill()
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// fill decodes the next line into pending, or returns why it cannot.
func (r *bodyReader) fill() error {
	if r.last {
		return io.EOF
	}
	text, err := r.br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		// A last line without its newline was cut short; atEnd refuses
		// it if the ciphertext was complete without it.
		r.cut = len(text) > 0
		return io.EOF
	case err == bufio.ErrBufferFull:
		r.line++
		return r.formatError("line too long")
	case err != nil:
		return fmt.Errorf("shares: reading share %d: %w", r.index(), err)
	}
	r.line++
	text = text[:len(text)-1]
	if len(text) == 0 || len(text) > b64LineLen || len(text)%4 != 0 {
		return r.formatError(fmt.Sprintf("a base64 line of %d characters (want %d, or fewer on the last line, in groups of 4)", len(text), b64LineLen))
	}
	// Strict decoding refuses bad characters, misplaced padding and
	// non-zero padding bits, but skips '\r': refuse that here, so each
	// ciphertext has exactly one encoding.
	n, err := base64.StdEncoding.Strict().Decode(r.buf[:], text)
	if err != nil || bytes.IndexByte(text, '\r') >= 0 {
		return r.formatError("not canonical base64")
	}
	r.got += int64(n)
	if len(text) < b64LineLen || n < lineBytes {
		r.last = true
		// Only the last line may be short: say now if it is not, rather
		// than report the ciphertext as truncated.
		if _, err := r.br.Peek(1); err != io.EOF {
			if err != nil {
				return fmt.Errorf("shares: reading share %d: %w", r.index(), err)
			}
			r.line++
			if r.got == r.want {
				return r.formatError("data appended after the end of the ciphertext")
			}
			return r.formatError(fmt.Sprintf("a line shorter than %d characters before the last line", b64LineLen))
		}
	}
	r.pending = r.buf[:n]
	return nil
}

// atEnd checks that nothing follows the ciphertext.
func (r *bodyReader) atEnd() error {
	var b [1]byte
	n, err := r.Read(b[:])
	if n > 0 {
		return r.formatError("data appended after the end of the ciphertext")
	}
	if err != io.EOF {
		return err
	}
	if r.cut {
		r.line++
		return r.formatError("text without a final newline after the end of the ciphertext")
	}
	if r.last {
		if _, err := r.br.Peek(1); err != io.EOF {
			if err != nil {
				return fmt.Errorf("shares: reading share %d: %w", r.index(), err)
			}
			r.line++
			return r.formatError("text after the last base64 line")
		}
	}
	return nil
}
