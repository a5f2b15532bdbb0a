package app

// BatchReportHTML is the report of a batch's answers: see batchreport.
func BatchReportHTML(records []BatchRecord) []byte { return nil }

// BatchReportMarkdown is the report as a Markdown table.
func BatchReportMarkdown(records []BatchRecord) []byte { return nil }
