package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
)

func init() {
	register(&command{
		name:    "match",
		summary: "how well texts describe an image (image-text matching), or zero-shot labels; needs a retrieval model (blip2-itm-vit-g)",
		usage:   "-m MODEL_DIR IMAGE TEXT... [--json] | -m MODEL_DIR IMAGE --labels \"dog,cat,car\" [--label-prompt \"a photo of {}\"] [--rerank K] [--temperature T] [--json]",
		run:     runMatch,
	})
}

// matchResult is one line of match --json.
type matchResult struct {
	Text      string     `json:"text"`
	ITMLogits [2]float64 `json:"itm_logits"` // no match, match
	ITM       float64    `json:"itm"`        // P(match)
	ITC       float64    `json:"itc"`        // contrastive similarity
}

// labelResult is one label of match --labels --json.
type labelResult struct {
	Label string   `json:"label"`
	Text  string   `json:"text"`
	Prob  float64  `json:"p"`
	ITC   float64  `json:"itc"`
	ITM   *float64 `json:"itm,omitempty"` // re-ranked labels only
}

func runMatch(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["match"], stderr)
	modelDir := fs.String("m", "", "retrieval model `folder` or installed name (converted from Salesforce/blip2-itm-vit-g)")
	asJSON := fs.Bool("json", false, "print one JSON line, the texts in the order given")
	labels := fs.String("labels", "", "zero-shot classification among these comma-separated `labels`")
	prompt := fs.String("label-prompt", retrieval.DefaultLabelPrompt, "the `text` a label is put in ({} marks the label)")
	rerank := fs.Int("rerank", 0, "re-rank the `K` most likely labels with the matching head")
	temperature := fs.Float64("temperature", 0, "softmax `temperature` of the labels (default: the checkpoint's, else 1 as transformers)")
	threads := fs.Int("threads", 0, "compute threads (0: all usable cores)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if *modelDir == "" || len(pos) < 1 || (*labels == "") == (len(pos) == 1) {
		return errUsage
	}
	if *labels == "" && (*rerank != 0 || *temperature != 0) {
		return badUsage("--rerank and --temperature apply to --labels")
	}
	if *rerank < 0 || *temperature < 0 || *threads < 0 {
		return badUsage("--rerank, --temperature and --threads must not be negative")
	}
	var labelList []string
	if *labels != "" {
		if labelList = retrieval.SplitLabels(*labels); len(labelList) == 0 {
			return badUsage("--labels %q names no label", *labels)
		}
		if !strings.Contains(*prompt, "{}") {
			return badUsage("--label-prompt %q has no {} for the label", *prompt)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m, err := retrieval.Open(*modelDir, vision.Options{Threads: *threads})
	if err != nil {
		return err
	}
	defer m.Close()
	img, err := m.EncodeFile(ctx, pos[0])
	if err != nil {
		return interrupted(err, stderr, "match")
	}
	if labelList != nil {
		ls, err := m.Labels(ctx, img, labelList, retrieval.LabelOptions{Prompt: *prompt, Temperature: *temperature, Rerank: *rerank})
		if err != nil {
			return interrupted(err, stderr, "match")
		}
		return printLabels(stdout, ls, *asJSON, *temperature, m.Temperature())
	}
	scores, err := m.Match(ctx, img, pos[1:])
	if err != nil {
		return interrupted(err, stderr, "match")
	}
	if *asJSON {
		res := make([]matchResult, len(scores))
		for i, s := range scores {
			res[i] = matchResult{Text: s.Text, ITMLogits: [2]float64{float64(s.ITMLogits[0]), float64(s.ITMLogits[1])}, ITM: s.ITM, ITC: float64(s.ITC)}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"results": res})
	}
	retrieval.SortScores(scores)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "P(MATCH)\tITC\tTEXT")
	for _, s := range scores {
		fmt.Fprintf(tw, "%s %5.1f%%\t%.4f\t%s\n", bar(s.ITM, 10), 100*s.ITM, s.ITC, clip(s.Text, 200))
	}
	return tw.Flush()
}

// printLabels prints a zero-shot classification, most likely first.
func printLabels(w io.Writer, ls []retrieval.Label, asJSON bool, asked, model float64) error {
	t := asked
	if t == 0 {
		t = model
	}
	if asJSON {
		res := make([]labelResult, len(ls))
		for i, l := range ls {
			res[i] = labelResult{Label: l.Label, Text: l.Text, Prob: l.Prob, ITC: float64(l.ITC)}
			if l.ITM >= 0 {
				p := l.ITM
				res[i].ITM = &p
			}
		}
		return json.NewEncoder(w).Encode(map[string]any{"labels": res, "temperature": t})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rerank := len(ls) > 0 && ls[0].ITM >= 0
	if rerank {
		fmt.Fprintln(tw, "P(LABEL)\tITC\tP(MATCH)\tLABEL")
	} else {
		fmt.Fprintln(tw, "P(LABEL)\tITC\tLABEL")
	}
	for _, l := range ls {
		fmt.Fprintf(tw, "%s %5.1f%%\t%.4f\t", bar(l.Prob, 10), 100*l.Prob, l.ITC)
		if rerank {
			if l.ITM >= 0 {
				fmt.Fprintf(tw, "%5.1f%%\t", 100*l.ITM)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintf(tw, "%s\n", clip(l.Label, 80))
	}
	tw.Flush()
	fmt.Fprintf(w, "(softmax of ITC / %g over %d labels)\n", t, len(ls))
	return nil
}

// bar draws a fraction in [0, 1] as width cells.
func bar(f float64, width int) string {
	n := int(f*float64(width) + 0.5)
	n = max(0, min(width, n))
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

// interrupted turns a cancelled context (Ctrl+C) into one line and exit
// status 130.
func interrupted(err error, stderr io.Writer, cmd string) error {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "blip2chat %s: interrupted\n", cmd)
		return exitError{130}
	}
	return err
}
