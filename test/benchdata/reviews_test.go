package benchdata

import "testing"

func TestTemplate(t *testing.T) {
	tpl := NewTemplate([]byte(`{"uid":"X-@U@","name":"n-@N@","u":"@U@"}`), "@N@", "@U@")
	if got := string(tpl.Fill("a", "42")); got != `{"uid":"X-42","name":"n-a","u":"42"}` {
		t.Fatal(got)
	}
}
