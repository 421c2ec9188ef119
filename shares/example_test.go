package shares_test

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/keyquorum/keyquorum/shares"
	"go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/util/random"
)

func ExampleSplit() {
	secret := suite.Scalar().Pick(random.New(rand.Reader))
	all, commitment, err := shares.Split(secret, 3, 5, rand.Reader)
	if err != nil {
		panic(err)
	}
	for _, s := range all {
		// Anyone holding the public commitment can check a share.
		fmt.Printf("share %d of %d valid: %v\n", s.Index, len(all), commitment.Verify(s) == nil)
	}
	fmt.Println("threshold:", commitment.Threshold())
	fmt.Println("public key is secret·G:", commitment.PublicKey().Equal(suite.Point().Mul(secret, nil)))
	// Output:
	// share 1 of 5 valid: true
	// share 2 of 5 valid: true
	// share 3 of 5 valid: true
	// share 4 of 5 valid: true
	// share 5 of 5 valid: true
	// threshold: 3
	// public key is secret·G: true
}

func ExampleRecover() {
	secret := suite.Scalar().Pick(random.New(rand.Reader))
	all, commitment, _ := shares.Split(secret, 3, 5, rand.Reader)

	// Any three shares, in any order, give the secret back.
	got, err := shares.RecoverWithCommitment([]shares.Share{all[4], all[0], all[2]}, commitment)
	fmt.Println("shares 5, 1, 3:", err == nil && got.Equal(secret))

	got, err = shares.Recover([]shares.Share{all[1], all[3], all[4]}, 3)
	fmt.Println("shares 2, 4, 5:", err == nil && got.Equal(secret))

	// Two are not enough.
	_, err = shares.RecoverWithCommitment(all[:2], commitment)
	fmt.Println(errors.Is(err, shares.ErrTooFewShares))
	fmt.Println(err)

	// A share that was altered is caught and named.
	bad := shares.Share{Index: 2, Value: suite.Scalar().Add(all[1].Value, suite.Scalar().One())}
	_, err = shares.RecoverWithCommitment([]shares.Share{all[0], bad, all[2]}, commitment)
	var inconsistent *shares.InconsistentShareError
	fmt.Println(errors.As(err, &inconsistent), inconsistent.Index)
	// Output:
	// shares 5, 1, 3: true
	// shares 2, 4, 5: true
	// true
	// shares: too few shares: 2 given, 3 needed; get 1 more share(s) of the same split from their holders
	// true 2
}

// suite is the Ed25519 group keyquorum computes in, from kyber's public
// packages: what code outside this module uses.
var suite = edwards25519.NewBlakeSHA256Ed25519()
