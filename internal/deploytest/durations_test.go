package deploytest

import (
	"fmt"
	"sort"
	"testing"

	"github.com/rotation-suite/rotation/internal/envconf"
)

// Every duration parameter of the example and of the stacks it nests takes
// the functions' one duration grammar: its AllowedPattern is
// envconf.DurationPattern (which accepts exactly what the functions parse),
// so CloudFormation refuses what a function would refuse at cold start. A
// duration parameter is one whose default is a duration other than 0,
// except the schedule's window, which Secrets Manager reads in its own
// grammar (whole hours, 1h–24h).
// serviceDurations are parameters read by AWS services, not by a function.
var serviceDurations = map[string]bool{"RotationWindow": true}

func TestEveryDurationParameterTakesTheFunctionsGrammar(t *testing.T) {
	tp := loadTemplate(t)
	docs := map[string]M{exampleTemplate: tp.Parent}
	for _, app := range tp.Apps {
		docs[app.Location] = app.Source
	}
	var found []string
	for where, doc := range docs {
		params, _ := doc["Parameters"].(M)
		for name, p := range params {
			pm, _ := p.(M)
			def, ok := pm["Default"].(string)
			if !ok || def == "0" || serviceDurations[name] {
				continue
			}
			if _, err := envconf.ParseDuration(def); err != nil {
				continue
			}
			found = append(found, where+" "+name)
			if got := fmt.Sprint(pm["AllowedPattern"]); got != envconf.DurationPattern {
				t.Errorf("%s parameter %s (default %s): AllowedPattern %q, want %q", where, name, def, got, envconf.DurationPattern)
			}
		}
	}
	sort.Strings(found)
	if len(found) < 14 {
		t.Fatalf("found only %d duration parameters (want the 7 of the stacks and the 7 of the example): %v", len(found), found)
	}
}
