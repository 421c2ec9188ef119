package trustee

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/keyquorum/keyquorum/escrow"
	"github.com/keyquorum/keyquorum/internal/group"
	"go.dedis.ch/kyber/v3"
)

// ShareFileHeader is the first line of a trustee share file.
const ShareFileHeader = "keyquorum trustee share v1"

// ShareFile is one trustee's secret: its share of every epoch key. It is
// text, with a comment header saying what it is.
type ShareFile struct {
	Index     int
	Name      string
	Threshold int
	Shares    map[uint32]kyber.Scalar // by epoch
}

// ErrBadShareFile wraps every share-file parse failure.
var ErrBadShareFile = errors.New("trustee: bad share file")

// Marshal encodes the share file:
//
//	keyquorum trustee share v1
//	# comment lines
//	trustee: 1
//	name: trustee-1
//	threshold: 3
//	epoch: 1 <base64 share>
//	...
func (s *ShareFile) Marshal() ([]byte, error) {
	if s.Index < 1 || !escrow.ValidName(s.Name) || s.Threshold < 1 || len(s.Shares) == 0 {
		return nil, fmt.Errorf("%w: incomplete share file", ErrBadShareFile)
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, ShareFileHeader)
	fmt.Fprintf(&b, "# SECRET: %s's share of the keyquorum group key, one line per epoch.\n", s.Name)
	fmt.Fprintf(&b, "# Any %d share files of this group together can decrypt every escrowed session\n", s.Threshold)
	fmt.Fprintln(&b, "# of the epochs they hold. Keep this file on the trustee's machine only (mode 0600).")
	fmt.Fprintln(&b, "# It is not encrypted. To give trustee nodes their shares sealed to their keys, deal with --descriptor.")
	fmt.Fprintf(&b, "trustee: %d\nname: %s\nthreshold: %d\n", s.Index, s.Name, s.Threshold)
	var epochs []uint32
	for e := range s.Shares {
		epochs = append(epochs, e)
	}
	sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
	for _, e := range epochs {
		fmt.Fprintf(&b, "epoch: %d %s\n", e, base64.StdEncoding.EncodeToString(group.ScalarBytes(s.Shares[e])))
	}
	return b.Bytes(), nil
}

// ParseShareFile decodes a share file strictly: the header, the comment
// lines, then the fields in order; marshal(parse(b)) == b.
func ParseShareFile(b []byte) (*ShareFile, error) {
	bad := func(line int, format string, a ...any) (*ShareFile, error) {
		return nil, fmt.Errorf("%w: line %d: %s", ErrBadShareFile, line, fmt.Sprintf(format, a...))
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	s := &ShareFile{Shares: map[uint32]kyber.Scalar{}}
	line := 0
	next := func() (string, bool) {
		for sc.Scan() {
			line++
			t := sc.Text()
			if line > 1 && strings.HasPrefix(t, "#") {
				continue
			}
			return t, true
		}
		return "", false
	}
	if h, _ := next(); h != ShareFileHeader {
		return bad(1, "first line must be %q; is this a keyquorum trustee share file?", ShareFileHeader)
	}
	field := func(key string) (string, error) {
		t, ok := next()
		v, found := strings.CutPrefix(t, key+": ")
		if !ok || !found {
			_, err := bad(line, "expected %q", key+": ...")
			return "", err
		}
		return v, nil
	}
	num := func(key string) (int, error) {
		v, err := field(key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || strconv.Itoa(n) != v {
			_, err := bad(line, "%s must be a positive integer", key)
			return 0, err
		}
		return n, nil
	}
	var err error
	if s.Index, err = num("trustee"); err != nil {
		return nil, err
	}
	if s.Name, err = field("name"); err != nil {
		return nil, err
	}
	if s.Threshold, err = num("threshold"); err != nil {
		return nil, err
	}
	for {
		t, ok := next()
		if !ok {
			break
		}
		v, found := strings.CutPrefix(t, "epoch: ")
		es, sh, ok2 := strings.Cut(v, " ")
		e, err := strconv.ParseUint(es, 10, 32)
		if !found || !ok2 || err != nil || strconv.FormatUint(e, 10) != es {
			return bad(line, "expected \"epoch: N SHARE\"")
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(sh)
		if err != nil {
			return bad(line, "share is not base64")
		}
		x, err := group.ParseScalar(raw)
		if err != nil {
			return bad(line, "share: %v", err)
		}
		if _, dup := s.Shares[uint32(e)]; dup {
			return bad(line, "epoch %d listed twice", e)
		}
		s.Shares[uint32(e)] = x
	}
	again, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form (comments or spacing edited?); regenerate it", ErrBadShareFile)
	}
	return s, nil
}
