package presence

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/internal/option"
)

func TestDefaultHubOptionsMakeAHub(t *testing.T) {
	h, err := NewHub(NewMemory(), DefaultHubOptions())
	if err != nil || h == nil {
		t.Fatalf("NewHub(DefaultHubOptions()) = %v, %v", h, err)
	}
	if _, err := NewHub(nil, DefaultHubOptions()); err == nil {
		t.Fatal("NewHub without a backend: no error")
	}
}

// NewHub refuses, each by its field, the values that mean nothing; a zero
// is refused too where it would mean nothing, not a default.
func TestNewHubRefusesOptionsByName(t *testing.T) {
	for _, tc := range []struct {
		set  func(*HubOptions)
		want []string // each refused option's message, in field order
	}{
		{func(o *HubOptions) { o.Window = 0 }, []string{"Window must be positive, got 0s"}},
		{func(o *HubOptions) { o.Window = -time.Second }, []string{"Window must be positive, got -1s"}},
		{func(o *HubOptions) { o.MaxStreams = 0 }, []string{"MaxStreams must be at least 1, got 0"}},
		{func(o *HubOptions) { o.MaxRooms = -2 }, []string{"MaxRooms must be at least 1, got -2"}},
		{func(o *HubOptions) { o.MembersCap = 0 }, []string{"MembersCap must be at least 1, got 0"}},
		{func(o *HubOptions) { o.Grace = -time.Second }, []string{"Grace must not be negative, got -1s"}},
		{func(o *HubOptions) { o.MaxGracePerSource = -1 }, []string{"MaxGracePerSource must not be negative, got -1"}},
		{func(o *HubOptions) { o.MaxPerSource = -1 }, []string{"MaxPerSource must not be negative, got -1"}},
		{func(o *HubOptions) { o.MaxWatchRoomsPerSource = -1 }, []string{"MaxWatchRoomsPerSource must not be negative, got -1"}},
		{func(o *HubOptions) { o.Window, o.MaxRooms = -1, 0 }, []string{"Window must be positive, got -1ns", "MaxRooms must be at least 1, got 0"}},
		// Zero is off for these, not refused.
		{func(o *HubOptions) {
			o.Grace, o.MaxGracePerSource, o.MaxPerSource, o.MaxWatchRoomsPerSource = 0, 0, 0, 0
		}, nil},
	} {
		opts := DefaultHubOptions()
		tc.set(&opts)
		_, err := NewHub(NewMemory(), opts)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%+v: %v", opts, err)
			}
			continue
		}
		if err == nil || err.Error() != strings.Join(tc.want, "\n") {
			t.Errorf("%+v: got %v, want %q", opts, err, tc.want)
			continue
		}
		var oe *option.Error
		if !errors.As(err, &oe) || oe.Error() != tc.want[0] {
			t.Errorf("%+v: %v is not an *option.Error for %q", opts, err, tc.want[0])
		}
	}
}
