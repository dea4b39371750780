package serve

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{name: "Zero", cfg: Config{}, wantErr: "procs must be between 1 and 64, got 0"},
		{name: "Defaults", cfg: Config{}.withDefaults()},
		{name: "ZeroRequests", cfg: Config{Procs: 1, Prefix: "p"}, wantErr: "requests must be between 1 and 100, got 0"},
		{name: "Full", cfg: Config{Procs: 64, Requests: 100, Think: MaxThink, Prefix: "a_1"}},
		{name: "NegativeProcs", cfg: Config{Procs: -1}.withDefaults(), wantErr: "procs must be between 1 and 64"},
		{name: "TooManyProcs", cfg: Config{Procs: 65}.withDefaults(), wantErr: "procs must be between 1 and 64"},
		{name: "TooManyRequests", cfg: Config{Requests: 101}.withDefaults(), wantErr: "requests must be between 1 and 100"},
		{name: "NegativeThink", cfg: Config{Think: -time.Millisecond}.withDefaults(), wantErr: "think must be between 0"},
		{name: "LongThink", cfg: Config{Think: MaxThink + 1}.withDefaults(), wantErr: "think must be between 0"},
		{name: "UpperCasePrefix", cfg: Config{Prefix: "Serve"}.withDefaults(), wantErr: `prefix "Serve"`},
		{name: "InjectionPrefix", cfg: Config{Prefix: "x; drop table y"}.withDefaults(), wantErr: "prefix"},
		{name: "LongPrefix", cfg: Config{Prefix: "a" + strings.Repeat("b", 40)}.withDefaults(), wantErr: "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
