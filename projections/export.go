package projections

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hoso-ledger/hoso"
	"github.com/xuri/excelize/v2"
)

// The official form: Biểu II.06a of Circular 01/2018/TT-VPCP, "Tình hình,
// kết quả giải quyết thủ tục hành chính tại cơ quan, đơn vị trực tiếp giải
// quyết thủ tục hành chính". Columns (1)–(13) are the form's; (14)–(17)
// carry what the form lacks and hoso keeps so that every row balances.
const (
	formNumber = "Biểu số II.06a/VPCP/KSTT"
	formTitle  = "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH TẠI CƠ QUAN, ĐƠN VỊ TRỰC TIẾP GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH"
	totalName  = "Tổng cộng"
)

// formColumn is one numbered column of the form.
type formColumn struct {
	header string // the column's own header
	value  func(r *hoso.ReportRow) int64
}

// formColumns are columns (3) to (17); (1) STT and (2) the row's name come
// first. (12) "chưa đến hạn" counts paused dossiers too, whose clock is
// stopped, so that (11) = (12) + (13) as on the form; (17) shows how many
// of (11) are paused.
var formColumns = []formColumn{
	{"Tổng số hồ sơ nhận giải quyết", func(r *hoso.ReportRow) int64 { return r.Received + r.CarriedOver }},
	{"Trực tuyến", func(r *hoso.ReportRow) int64 { return r.ReceivedOnline }},
	{"Trực tiếp, dịch vụ bưu chính", func(r *hoso.ReportRow) int64 { return r.ReceivedDirect + r.ReceivedPostal }},
	{"Từ kỳ trước chuyển sang", func(r *hoso.ReportRow) int64 { return r.CarriedOver }},
	{"Tổng số hồ sơ đã giải quyết", func(r *hoso.ReportRow) int64 { return r.Resolved }},
	{"Trả trước hạn", func(r *hoso.ReportRow) int64 { return r.ResolvedEarly }},
	{"Trả đúng thời hạn", func(r *hoso.ReportRow) int64 { return r.ResolvedOnTime }},
	{"Trả quá hạn", func(r *hoso.ReportRow) int64 { return r.ResolvedLate }},
	{"Tổng số hồ sơ đang giải quyết", func(r *hoso.ReportRow) int64 { return r.Pending }},
	{"Chưa đến hạn", func(r *hoso.ReportRow) int64 { return r.PendingInDeadline + r.PendingPaused }},
	{"Quá hạn", func(r *hoso.ReportRow) int64 { return r.PendingOverdue }},
	{"Nhận chuyển đến", func(r *hoso.ReportRow) int64 { return r.TransferredIn }},
	{"Chuyển đi", func(r *hoso.ReportRow) int64 { return r.TransferredOut }},
	{"Rút hồ sơ", func(r *hoso.ReportRow) int64 { return r.Withdrawn }},
	{"Trong đó tạm dừng chờ bổ sung", func(r *hoso.ReportRow) int64 { return r.PendingPaused }},
}

func (rep *Report) rowLabel() string {
	if rep.By == ByProcedure {
		return "Thủ tục hành chính"
	}
	return "Đơn vị"
}

// periodLine is the form's period line with dates as dd/mm/yyyy.
func (rep *Report) periodLine() string {
	return fmt.Sprintf("Kỳ báo cáo: từ ngày %s đến ngày %s", viDate(rep.From), viDate(rep.To))
}

func viDate(iso string) string {
	if len(iso) != 10 {
		return iso
	}
	return iso[8:10] + "/" + iso[5:7] + "/" + iso[0:4]
}

// subtotals are the rows per authority level ("Cấp tỉnh", "Cấp huyện",
// "Cấp xã") that the form carries before its total: the report's Levels,
// when there are several.
func (rep *Report) subtotals() []*hoso.ReportRow {
	if len(rep.Levels) < 2 {
		return nil
	}
	out := make([]*hoso.ReportRow, len(rep.Levels))
	for i := range rep.Levels {
		out[i] = &rep.Levels[i]
	}
	return out
}

// CSV writes the form as one header row of numbered Vietnamese column
// names, one row per unit (or procedure), the own rows of the units above
// the level first, a subtotal row per authority level when there are
// several, and the totals row "Tổng cộng", followed by a code column so
// that a program can join on it (the level's name on a subtotal row).
func (rep *Report) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{"(1) STT", "(2) " + rep.rowLabel()}
	for i, c := range formColumns {
		header = append(header, fmt.Sprintf("(%d) %s", i+3, c.header))
	}
	header = append(header, "Mã")
	if err := cw.Write(header); err != nil {
		return err
	}
	line := func(stt, name, code string, r *hoso.ReportRow) error {
		rec := []string{stt, name}
		for _, c := range formColumns {
			rec = append(rec, strconv.FormatInt(c.value(r), 10))
		}
		return cw.Write(append(rec, code))
	}
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if err := line(strconv.Itoa(i+1), r.Name, rowKey(r), r); err != nil {
			return err
		}
	}
	for _, l := range rep.subtotals() {
		if err := line("", l.Name, string(l.Level), l); err != nil {
			return err
		}
	}
	if err := line("", totalName, "", &rep.Total); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// XLSX writes the form as a workbook: the form's number, title, period and
// reporting unit, the grouped and numbered headers, the rows (own rows
// first), the subtotal rows per authority level and the totals row, and
// under it a note of the unassigned dossiers, if any.
func (rep *Report) XLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "II.06a"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	ncols := 2 + len(formColumns)
	col := func(i int) string { // 1-based
		name, _ := excelize.ColumnNumberToName(i)
		return name
	}
	cell := func(c, r int) string { return col(c) + strconv.Itoa(r) }
	last := col(ncols)

	var errs []error
	set := func(c, r int, v any) { errs = append(errs, f.SetCellValue(sheet, cell(c, r), v)) }
	merge := func(c1, r1, c2, r2 int) { errs = append(errs, f.MergeCell(sheet, cell(c1, r1), cell(c2, r2))) }

	set(1, 1, formNumber)
	merge(1, 1, ncols, 1)
	set(1, 2, formTitle)
	merge(1, 2, ncols, 2)
	set(1, 3, rep.periodLine())
	merge(1, 3, ncols, 3)
	scope := "Đơn vị báo cáo: " + rep.Name
	set(1, 4, scope)
	merge(1, 4, ncols, 4)
	set(1, 5, fmt.Sprintf("Số liệu đến sự kiện số %d của sổ cái", rep.AsOfSeq))
	merge(1, 5, ncols, 5)

	// Headers: rows 7-9 name the columns, row 10 numbers them.
	const h1, h2, h3, hn = 7, 8, 9, 10
	set(1, h1, "STT")
	merge(1, h1, 1, h3)
	set(2, h1, rep.rowLabel())
	merge(2, h1, 2, h3)
	set(3, h1, "Số hồ sơ nhận giải quyết")
	merge(3, h1, 6, h1)
	set(3, h2, "Tổng số")
	merge(3, h2, 3, h3)
	set(4, h2, "Trong đó")
	merge(4, h2, 6, h2)
	set(4, h3, formColumns[1].header)
	set(5, h3, formColumns[2].header)
	set(6, h3, formColumns[3].header)
	set(7, h1, "Kết quả giải quyết")
	merge(7, h1, 13, h1)
	set(7, h2, "Số hồ sơ đã giải quyết")
	merge(7, h2, 10, h2)
	set(11, h2, "Số hồ sơ đang giải quyết")
	merge(11, h2, 13, h2)
	set(7, h3, "Tổng số")
	set(8, h3, formColumns[5].header)
	set(9, h3, formColumns[6].header)
	set(10, h3, formColumns[7].header)
	set(11, h3, "Tổng số")
	set(12, h3, formColumns[9].header)
	set(13, h3, formColumns[10].header)
	set(14, h1, "Ngoài biểu mẫu")
	merge(14, h1, ncols, h1)
	for c := 14; c <= ncols; c++ {
		set(c, h2, formColumns[c-3].header)
		merge(c, h2, c, h3)
	}
	for c := 1; c <= ncols; c++ {
		set(c, hn, fmt.Sprintf("(%d)", c))
	}

	row := hn + 1
	put := func(stt any, name string, r *hoso.ReportRow) {
		set(1, row, stt)
		set(2, row, name)
		for i, c := range formColumns {
			set(i+3, row, c.value(r))
		}
		row++
	}
	for i := range rep.Rows {
		put(i+1, rep.Rows[i].Name, &rep.Rows[i])
	}
	subtotalRow := row
	for _, l := range rep.subtotals() {
		put("", l.Name, l)
	}
	totalRow := row
	put("", totalName, &rep.Total)
	if n := rep.Total.Unassigned; n > 0 {
		// Not a column of the form: a note under it.
		var names []string
		for i := range rep.Rows {
			if rep.Rows[i].Unassigned > 0 {
				names = append(names, fmt.Sprintf("%s: %d", rep.Rows[i].Name, rep.Rows[i].Unassigned))
			}
		}
		set(1, totalRow+2, fmt.Sprintf("Ghi chú: %d hồ sơ của đơn vị không còn tồn tại ngày %s, chưa xác định được đơn vị tiếp nhận theo bảng chuyển đổi đơn vị hành chính, được tính ở đơn vị gần nhất còn tồn tại (%s).",
			n, viDate(rep.To), strings.Join(names, "; ")))
		merge(1, totalRow+2, ncols, totalRow+2)
	}

	header, err := f.NewStyle(&excelize.Style{
		Font:      &excelize.Font{Bold: true},
		Alignment: &excelize.Alignment{Horizontal: "center", Vertical: "center", WrapText: true},
		Border:    borders(),
	})
	if err != nil {
		return err
	}
	title, err := f.NewStyle(&excelize.Style{
		Font:      &excelize.Font{Bold: true, Size: 13},
		Alignment: &excelize.Alignment{Horizontal: "center", Vertical: "center", WrapText: true},
	})
	if err != nil {
		return err
	}
	body, err := f.NewStyle(&excelize.Style{Border: borders()})
	if err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Border: borders()})
	if err != nil {
		return err
	}
	errs = append(errs,
		f.SetCellStyle(sheet, "A1", last+"3", title),
		f.SetCellStyle(sheet, cell(1, h1), cell(ncols, hn), header),
		f.SetCellStyle(sheet, cell(1, hn+1), cell(ncols, totalRow), body),
		f.SetCellStyle(sheet, cell(1, subtotalRow), cell(ncols, totalRow), bold),
		f.SetRowHeight(sheet, 2, 36),
		f.SetRowHeight(sheet, h3, 48),
		f.SetColWidth(sheet, "A", "A", 6),
		f.SetColWidth(sheet, "B", "B", 34),
		f.SetColWidth(sheet, "C", last, 12),
		f.SetPanes(sheet, &excelize.Panes{Freeze: true, XSplit: 2, YSplit: hn, TopLeftCell: cell(3, hn+1), ActivePane: "bottomRight"}),
	)
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	_, err = f.WriteTo(w)
	return err
}

func borders() []excelize.Border {
	var b []excelize.Border
	for _, side := range []string{"left", "top", "right", "bottom"} {
		b = append(b, excelize.Border{Type: side, Color: "000000", Style: 1})
	}
	return b
}

// Text writes the report as an aligned table for a terminal.
func (rep *Report) Text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	scope := rep.Name
	if rep.Unit != "" {
		scope += " (" + rep.Unit + ")"
	}
	fmt.Fprintf(w, "%s, %s by %s, %s to %s, as of seq %d\n", scope, rep.Level, rep.By, rep.From, rep.To, rep.AsOfSeq)
	fmt.Fprintln(tw, "code\tname\tcarried\treceived\tonline\tdirect\tpostal\tin\tout\tresolved\tearly\ton time\tlate\twithdrawn\tpending\tin deadline\toverdue\tpaused\ton-time %\tresolved %\tunassigned\t")
	line := func(code, name string, r *hoso.ReportRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t\n",
			code, name, r.CarriedOver, r.Received, r.ReceivedOnline, r.ReceivedDirect, r.ReceivedPostal,
			r.TransferredIn, r.TransferredOut, r.Resolved, r.ResolvedEarly, r.ResolvedOnTime, r.ResolvedLate,
			r.Withdrawn, r.Pending, r.PendingInDeadline, r.PendingOverdue, r.PendingPaused,
			percent(r.OnTimeRate), percent(r.ResolutionRate), r.Unassigned)
	}
	for i := range rep.Rows {
		line(rowKey(&rep.Rows[i]), rep.Rows[i].Name, &rep.Rows[i])
	}
	for _, l := range rep.subtotals() {
		line(string(l.Level), l.Name, l)
	}
	line("", totalName, &rep.Total)
	return tw.Flush()
}

func percent(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(100**p, 'f', 1, 64)
}
