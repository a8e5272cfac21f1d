package explore

// Subject returns the subject the world was built for, so suites built on
// the world (internal/contracttest) can ask it whether the target accepts a
// value.
func (w *World) Subject() Subject { return w.subject }
