package image_test

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/sidecar-webhook/sidecar-webhook/tools/image"
)

// dockerfileStages parses the repository's Dockerfile with BuildKit's own
// parser.
func dockerfileStages(t *testing.T) []instructions.Stage {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// TestDockerfileRuntimeStage: the Dockerfile's image runs like the Go
// builder's: empty base, one COPY (one layer), the same user, entrypoint,
// command, ports and labels.
func TestDockerfileRuntimeStage(t *testing.T) {
	stages := dockerfileStages(t)
	final := stages[len(stages)-1]
	if final.BaseName != "scratch" {
		t.Errorf("runtime stage FROM %s, want scratch (the Go builder's empty base)", final.BaseName)
	}
	var (
		copies          []*instructions.CopyCommand
		user            string
		entrypoint, cmd *instructions.ShellDependantCmdLine
		ports           []string
		labels          = map[string]string{}
		args            = map[string]string{}
		otherLayers     []string
	)
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			copies = append(copies, c)
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = &c.ShellDependantCmdLine
		case *instructions.CmdCommand:
			cmd = &c.ShellDependantCmdLine
		case *instructions.ExposeCommand:
			ports = append(ports, c.Ports...)
		case *instructions.LabelCommand:
			// Expanded as BuildKit would with --build-arg VERSION=v9.9.9
			// --build-arg REVISION=abc.
			lex := shell.NewLex('\\')
			env := shell.EnvsFromSlice([]string{"VERSION=v9.9.9", "REVISION=abc"})
			if err := c.Expand(func(w string) (string, error) {
				s, _, err := lex.ProcessWord(w, env)
				return s, err
			}); err != nil {
				t.Fatal(err)
			}
			for _, kv := range c.Labels {
				labels[kv.Key] = kv.Value
			}
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				args[a.Key] = ""
			}
		case *instructions.RunCommand, *instructions.AddCommand:
			otherLayers = append(otherLayers, c.Name())
		}
	}
	if len(copies) != 1 || len(otherLayers) > 0 {
		t.Errorf("runtime stage has %d COPY and %q: want a single COPY, one layer as the Go builder makes", len(copies), otherLayers)
	}
	if len(copies) > 0 {
		c := copies[0]
		if c.From != stages[0].Name || !slices.Equal(c.SourcePaths, []string{"/rootfs/"}) || c.DestPath != "/" || c.Chown != "" {
			t.Errorf("runtime COPY --from=%s %q %s (chown %q), want COPY --from=%s /rootfs/ / (owned by root)",
				c.From, c.SourcePaths, c.DestPath, c.Chown, stages[0].Name)
		}
	}
	if user != image.User {
		t.Errorf("USER %q, want %q", user, image.User)
	}
	checkExecForm := func(what string, got *instructions.ShellDependantCmdLine, want []string) {
		t.Helper()
		if got == nil {
			t.Errorf("no %s", what)
			return
		}
		if got.PrependShell {
			t.Errorf("%s in shell form: there is no shell in the image", what)
		}
		if diff := cmp.Diff(want, got.CmdLine); diff != "" {
			t.Errorf("%s (-Go builder +Dockerfile):\n%s", what, diff)
		}
	}
	checkExecForm("ENTRYPOINT", entrypoint, image.Entrypoint)
	checkExecForm("CMD", cmd, image.Cmd)
	for i, p := range ports {
		if !strings.Contains(p, "/") {
			ports[i] = p + "/tcp"
		}
	}
	if diff := cmp.Diff(image.ExposedPorts, ports, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("EXPOSE (-Go builder +Dockerfile):\n%s", diff)
	}
	if labels[image.LabelSource] != image.Source || labels[image.LabelTitle] != image.Title {
		t.Errorf("LABEL %s=%q %s=%q, want %q and %q", image.LabelSource, labels[image.LabelSource],
			image.LabelTitle, labels[image.LabelTitle], image.Source, image.Title)
	}
	if labels[image.LabelVersion] != "v9.9.9" || labels[image.LabelRevision] != "abc" {
		t.Errorf("LABEL %s=%q %s=%q with --build-arg VERSION=v9.9.9 REVISION=abc: want the build args",
			image.LabelVersion, labels[image.LabelVersion], image.LabelRevision, labels[image.LabelRevision])
	}
	for _, a := range []string{"VERSION", "REVISION"} {
		if _, ok := args[a]; !ok {
			t.Errorf("no ARG %s in the runtime stage for its label", a)
		}
	}
}

// TestDockerfileBuildStage: the build stage compiles the binary as the Go
// builder does and lays out /rootfs with the same files and modes (the
// steps of its RUN are read as the shell would split them).
func TestDockerfileBuildStage(t *testing.T) {
	stages := dockerfileStages(t)
	var runs []string
	for _, c := range stages[0].Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			runs = append(runs, strings.Join(r.CmdLine, " "))
		}
	}
	lex := shell.NewLex('\\')
	type file struct {
		mode int64
		dir  bool
	}
	got := map[string]file{} // under /rootfs, as "etc/passwd", "tmp/"
	var built bool
	for _, run := range runs {
		words, err := lex.ProcessWords(run, shell.EnvsFromSlice(nil))
		if err != nil {
			t.Fatalf("RUN %s: %v", run, err)
		}
		for _, step := range splitSteps(words) {
			switch {
			case slices.Contains(step, "go") && slices.Contains(step, "build"):
				i := slices.Index(step, "go")
				env, flags := step[:i], step[i+2:]
				out := flagValue(flags, "-o")
				if !strings.HasPrefix(out, "/rootfs/") {
					continue // e.g. a go build outside the image's files
				}
				built = true
				for _, e := range image.BuildEnv {
					if !slices.Contains(env, e) {
						t.Errorf("go build without %s: %q", e, step)
					}
				}
				for _, f := range image.BuildFlags {
					if !slices.Contains(flags, f) {
						t.Errorf("go build without %q (the Go builder's flags are %q): %q", f, image.BuildFlags, step)
					}
				}
				if flags[len(flags)-1] != image.Package {
					t.Errorf("go build of %s, want %s", flags[len(flags)-1], image.Package)
				}
				got[strings.TrimPrefix(out, "/rootfs/")] = file{mode: 0o755}
			case step[0] == "chmod":
				mode := parseMode(t, step[1])
				for _, p := range step[2:] {
					rel := strings.TrimPrefix(p, "/rootfs/")
					f := got[rel]
					f.mode = mode
					got[rel] = f
				}
			case step[0] == "mkdir":
				mode := int64(0o755)
				if m := flagValue(step, "-m"); m != "" {
					mode = parseMode(t, m)
				}
				for _, p := range step[1:] {
					if rel, ok := strings.CutPrefix(p, "/rootfs/"); ok {
						got[rel+"/"] = file{mode: mode, dir: true}
					}
				}
			case step[0] == "install":
				mode := parseMode(t, flagValue(step, "-m"))
				operands := slices.DeleteFunc(slices.Clone(step[1:]), func(s string) bool { return s == "-m" || s == flagValue(step, "-m") })
				dest := strings.TrimPrefix(operands[len(operands)-1], "/rootfs/")
				for _, src := range operands[:len(operands)-1] {
					rel, ok := strings.CutPrefix(src, image.RootfsDir+"/")
					if !ok {
						t.Errorf("install of %s: the files come from %s, which the Go builder embeds", src, image.RootfsDir)
					}
					target := path.Join(dest, path.Base(src))
					if rel != target {
						t.Errorf("install %s to /%s: it belongs at /%s", src, target, rel)
					}
					got[target] = file{mode: mode}
				}
			}
		}
	}
	if !built {
		t.Fatalf("no go build into /rootfs/ in the build stage (RUN %q)", runs)
	}
	want := map[string]file{}
	for _, e := range image.Layout() {
		want[e.Name] = file{mode: e.Mode, dir: e.Dir}
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(file{})); diff != "" {
		t.Errorf("/rootfs (-Go builder's layout +Dockerfile's):\n%s", diff)
	}
}

// splitSteps splits shell words at && and ;.
func splitSteps(words []string) [][]string {
	var steps [][]string
	var cur []string
	for _, w := range words {
		if w == "&&" || w == ";" {
			if len(cur) > 0 {
				steps = append(steps, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	if len(cur) > 0 {
		steps = append(steps, cur)
	}
	return steps
}

// flagValue returns the word after flag (as in "-o out").
func flagValue(words []string, flag string) string {
	if i := slices.Index(words, flag); i >= 0 && i+1 < len(words) {
		return words[i+1]
	}
	return ""
}

func parseMode(t *testing.T, s string) int64 {
	t.Helper()
	m, err := strconv.ParseInt(s, 8, 64)
	if err != nil {
		t.Fatalf("mode %q: %v", s, err)
	}
	return m
}
