package racefree

import "testing"

// TestPlanCache_OnePlanPerShape: storing a shape that is already planned
// (concurrent first calls; a NULL default, which fill declines) keeps one
// plan, so the key's room stays for shapes with other column names.
func TestPlanCache_OnePlanPerShape(t *testing.T) {
	var pc planCache
	k := planKey{table: "t", verb: "get or create", nl: 1, nd: 1}
	byEmail := func() *plan { return &plan{lcols: []string{"email"}, icols: []string{"email", "name"}} }
	for range 2 * maxPlansPerKey {
		pc.store(k, byEmail())
	}
	if n := len(pc.load(k)); n != 1 {
		t.Fatalf("%d plans for one shape, want 1", n)
	}
	byName := &plan{lcols: []string{"name"}, icols: []string{"name", "email"}}
	pc.store(k, byName)
	if got := pc.load(k); len(got) != 2 || got[1] != byName {
		t.Fatalf("plans %v: the second shape was not kept", got)
	}
}
