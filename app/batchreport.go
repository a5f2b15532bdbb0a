package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"image/jpeg"
	"path/filepath"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
)

// A batch's report: one row per image, one column per prompt × setting ×
// model, the answers in the cells. The HTML file stands alone (thumbnails
// embedded as data: URLs, the style inline, no script, nothing fetched);
// the Markdown file is the same table as text.

// reportColumn is one column: a prompt under a setting on a model.
type reportColumn struct{ Model, Prompt, Setting string }

// reportGrid is the records arranged as the report shows them.
type reportGrid struct {
	images  []string
	columns []reportColumn
	cells   map[string]map[reportColumn]BatchRecord // by image, then column
	models  int                                     // distinct models
}

func newReportGrid(records []BatchRecord) reportGrid {
	g := reportGrid{cells: map[string]map[reportColumn]BatchRecord{}}
	seenCol, seenModel := map[reportColumn]bool{}, map[string]bool{}
	for _, r := range records {
		col := reportColumn{r.Model, r.Prompt, r.Setting}
		if !seenCol[col] {
			seenCol[col] = true
			g.columns = append(g.columns, col)
		}
		if !seenModel[r.Model] {
			seenModel[r.Model] = true
			g.models++
		}
		row := g.cells[r.Image]
		if row == nil {
			row = map[reportColumn]BatchRecord{}
			g.cells[r.Image] = row
			g.images = append(g.images, r.Image)
		}
		row[col] = r
	}
	return g
}

// title is a column's heading, as lines: the prompt, the setting, and the
// model when the report has several.
func (g reportGrid) title(c reportColumn) []string {
	p := fmt.Sprintf("%q", c.Prompt)
	if c.Prompt == "" {
		p = "(caption)"
	}
	t := []string{p, c.Setting}
	if g.models > 1 {
		t = append(t, filepath.Base(c.Model))
	}
	return t
}

// columnStats sum a column's answers for the footer.
type columnStats struct {
	n, tokens int
	ms        float64
}

func (g reportGrid) stats() ([]columnStats, columnStats) {
	cs := make([]columnStats, len(g.columns))
	var all columnStats
	for _, img := range g.images {
		for i, c := range g.columns {
			if r, ok := g.cells[img][c]; ok {
				cs[i].n++
				cs[i].tokens += r.Tokens
				cs[i].ms += r.Timings.TotalMS
			}
		}
	}
	for _, c := range cs {
		all.n, all.tokens, all.ms = all.n+c.n, all.tokens+c.tokens, all.ms+c.ms
	}
	return cs, all
}

// thumbnailSize is the longest side of a report's thumbnails, in pixels.
const thumbnailSize = 160

// thumbnail is the image at path as a small JPEG data: URL; "" when it
// cannot be read (it changed since it was answered).
func thumbnail(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return ""
	}
	rgb := imageprep.ToRGB(img)
	w, h := rgb.Bounds().Dx(), rgb.Bounds().Dy()
	if s := max(w, h); s > thumbnailSize {
		w, h = max(1, w*thumbnailSize/s), max(1, h*thumbnailSize/s)
		rgb = imageprep.ResizeBicubic(rgb, w, h)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, rgb, &jpeg.Options{Quality: 80}); err != nil {
		return ""
	}
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// marked is answer as HTML with the words the first column's answer lacks
// marked: what a column changed, at a glance.
func marked(answer, first string) string {
	have := map[string]bool{}
	for _, w := range strings.Fields(first) {
		have[w] = true
	}
	var b strings.Builder
	for i, w := range strings.Fields(answer) {
		if i > 0 {
			b.WriteByte(' ')
		}
		if have[w] {
			b.WriteString(html.EscapeString(w))
		} else {
			b.WriteString("<mark>" + html.EscapeString(w) + "</mark>")
		}
	}
	return b.String()
}

const reportStyle = `body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222;background:#fff}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:6px;vertical-align:top;text-align:left;max-width:22em;overflow-wrap:anywhere;white-space:pre-wrap}
thead th{background:#f0f0f0;position:sticky;top:0}
th.img{font-weight:normal;font-size:12px;word-break:break-all;max-width:170px}
th.img img{display:block;max-width:160px;max-height:160px;margin-bottom:4px}
td.diff{background:#fff6d5}
td.same{background:#eef8ee}
td.none{color:#999}
mark{background:#ffd84d}
tfoot td{background:#f7f7f7;font-size:12px;color:#444}
.setting{font-family:monospace;font-size:12px;color:#555}`

// BatchReportHTML is the report of records as one self-contained HTML
// page. A cell whose answer differs from the row's first column is
// highlighted, its new words marked; a row whose answers all agree is
// green.
func BatchReportHTML(records []BatchRecord) []byte {
	g := newReportGrid(records)
	var b bytes.Buffer
	e := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>blip2chat batch report</title>\n<style>" + reportStyle + "</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>blip2chat batch</h1>\n<p>%d images × %d columns, %d answers.</p>\n", len(g.images), len(g.columns), len(records))
	b.WriteString("<table>\n<thead><tr><th>image</th>")
	for _, c := range g.columns {
		t := g.title(c)
		fmt.Fprintf(&b, "<th>%s<br><span class=\"setting\">%s</span>", e(Printable(t[0])), e(t[1]))
		if len(t) > 2 {
			fmt.Fprintf(&b, "<br><span class=\"setting\">%s</span>", e(Printable(t[2])))
		}
		b.WriteString("</th>")
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, img := range g.images {
		row := g.cells[img]
		b.WriteString("<tr><th class=\"img\">")
		if src := thumbnail(img); src != "" {
			fmt.Fprintf(&b, "<img src=\"%s\" alt=\"%s\">", src, e(Printable(filepath.Base(img))))
		}
		b.WriteString(e(Printable(img)) + "</th>")
		first, hasFirst := "", false
		allSame := true
		for _, c := range g.columns {
			if r, ok := row[c]; ok {
				if !hasFirst {
					first, hasFirst = Printable(r.Answer), true
				} else if Printable(r.Answer) != first {
					allSame = false
				}
			}
		}
		seen := false
		for _, c := range g.columns {
			r, ok := row[c]
			switch {
			case !ok:
				b.WriteString("<td class=\"none\">—</td>")
			case !seen:
				seen = true
				class := ""
				if allSame && len(g.columns) > 1 {
					class = " class=\"same\""
				}
				fmt.Fprintf(&b, "<td%s>%s</td>", class, e(Printable(r.Answer)))
			default:
				a := Printable(r.Answer)
				if a == first {
					class := ""
					if allSame {
						class = " class=\"same\""
					}
					fmt.Fprintf(&b, "<td%s>%s</td>", class, e(a))
				} else {
					fmt.Fprintf(&b, "<td class=\"diff\">%s</td>", marked(a, first))
				}
			}
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n<tfoot><tr><td>timings</td>")
	cs, all := g.stats()
	for _, s := range cs {
		if s.n == 0 {
			b.WriteString("<td></td>")
			continue
		}
		fmt.Fprintf(&b, "<td>%d answers, %.1f tokens and %.0f ms per answer</td>", s.n, float64(s.tokens)/float64(s.n), s.ms/float64(s.n))
	}
	b.WriteString("</tr></tfoot>\n</table>\n")
	if all.n > 0 {
		fmt.Fprintf(&b, "<p>%d answers, %d tokens, %.1f s answering (%.2f answers/s; model loading not counted).</p>\n",
			all.n, all.tokens, all.ms/1000, float64(all.n)/(all.ms/1000))
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

// mdCell is text for a Markdown table cell: one line, pipes escaped.
func mdCell(s string) string {
	s = strings.NewReplacer("\\", "\\\\", "|", "\\|", "\n", "<br>", "<", "&lt;", ">", "&gt;").Replace(Printable(s))
	return strings.TrimSpace(s)
}

// BatchReportMarkdown is the report of records as a Markdown table; an
// answer that differs from the row's first column is in bold.
func BatchReportMarkdown(records []BatchRecord) []byte {
	g := newReportGrid(records)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# blip2chat batch\n\n%d images × %d columns, %d answers.\n\n| image |", len(g.images), len(g.columns), len(records))
	for _, c := range g.columns {
		b.WriteString(" " + mdCell(strings.Join(g.title(c), " · ")) + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(g.columns)) + "\n")
	for _, img := range g.images {
		row := g.cells[img]
		b.WriteString("| " + mdCell(img) + " |")
		first, hasFirst := "", false
		for _, c := range g.columns {
			r, ok := row[c]
			switch {
			case !ok:
				b.WriteString(" — |")
			case !hasFirst || Printable(r.Answer) == first:
				if !hasFirst {
					first, hasFirst = Printable(r.Answer), true
				}
				b.WriteString(" " + mdCell(r.Answer) + " |")
			case mdCell(r.Answer) == "":
				b.WriteString(" **(empty)** |")
			default:
				b.WriteString(" **" + mdCell(r.Answer) + "** |")
			}
		}
		b.WriteString("\n")
	}
	cs, all := g.stats()
	b.WriteString("| *ms per answer* |")
	for _, s := range cs {
		if s.n == 0 {
			b.WriteString(" |")
			continue
		}
		fmt.Fprintf(&b, " %.0f ms, %.1f tokens |", s.ms/float64(s.n), float64(s.tokens)/float64(s.n))
	}
	b.WriteString("\n")
	if all.n > 0 {
		fmt.Fprintf(&b, "\n%d answers, %d tokens, %.1f s answering (%.2f answers/s).\n", all.n, all.tokens, all.ms/1000, float64(all.n)/(all.ms/1000))
	}
	return b.Bytes()
}
