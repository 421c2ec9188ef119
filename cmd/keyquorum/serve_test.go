package main

import (
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/escrow"
)

func TestCurrentEpoch(t *testing.T) {
	d := func(day int) time.Time { return time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC) }
	g := &escrow.GroupFile{Epochs: []escrow.GroupEpoch{
		{Epoch: 1, ValidFrom: d(1), ValidUntil: d(8)},
		{Epoch: 2, ValidFrom: d(8), ValidUntil: d(15)},
		{Epoch: 5, ValidFrom: d(20), ValidUntil: d(27)}, // after a gap
	}}
	for _, c := range []struct {
		at   time.Time
		want uint32
		ok   bool
	}{
		{d(1).Add(-time.Hour), 0, false},
		{d(3), 1, true},
		{d(8), 2, true},
		{d(17), 3, true}, // in the gap: epoch 2 has ended
		{d(21), 5, true},
		{d(28), 6, true}, // past the last epoch
	} {
		got, ok := currentEpoch(g, c.at)
		if got != c.want || ok != c.ok {
			t.Errorf("at %s: got %d, %v; want %d, %v", c.at.Format(time.DateOnly), got, ok, c.want, c.ok)
		}
	}
}
