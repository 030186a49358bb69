package handlers

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hoso-ledger/hoso"
)

// templateFuncs format numbers, dates and codes the Vietnamese way.
var templateFuncs = template.FuncMap{
	"num":       formatCount,
	"rate":      formatRate,
	"date":      formatDate,
	"localTime": formatLocalTime,
	"localDate": formatLocalDate,
	"state":     func(s hoso.State) string { return label(stateNames, s) },
	"class":     func(c hoso.Classification) string { return label(classNames, c) },
	"eventType": func(t hoso.EventType) string { return label(eventNames, t) },
	"channel":   func(c hoso.Channel) string { return label(channelNames, c) },
	"outcome":   func(o hoso.Outcome) string { return label(outcomeNames, o) },
	"level":     func(l hoso.Level) string { return label(levelNames, l) },
	"inc":       func(i int) int { return i + 1 },
	"unitURL":   func(code string) string { return "/units/" + url.PathEscape(code) },
}

// formatCount writes n with a dot between thousands: 30.000.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatRate writes a rate as a percentage with a decimal comma (95,2 %),
// and "—" when it is undefined (nothing to divide by).
func formatRate(r *float64) string {
	if r == nil {
		return "—"
	}
	return strings.Replace(strconv.FormatFloat(*r*100, 'f', 1, 64), ".", ",", 1) + " %"
}

// formatDate writes a YYYY-MM-DD date as dd/mm/yyyy; anything else as it is.
func formatDate(s string) string {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return t.Format("02/01/2006")
}

// formatLocalTime writes an instant in Vietnam's time; "" for the zero time.
func formatLocalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(hoso.VietnamZone).Format("02/01/2006 15:04")
}

// formatLocalDate writes an instant's date in Vietnam; "" for the zero time.
func formatLocalDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(hoso.VietnamZone).Format("02/01/2006")
}

func label[K ~string](names map[K]string, k K) string {
	if n, ok := names[k]; ok {
		return n
	}
	return string(k)
}

var stateNames = map[hoso.State]string{
	hoso.StateProcessing:         "Đang giải quyết",
	hoso.StateAwaitingSupplement: "Chờ bổ sung",
	hoso.StateResolved:           "Đã giải quyết",
	hoso.StateReturned:           "Đã trả kết quả",
	hoso.StateWithdrawn:          "Đã rút",
}

var classNames = map[hoso.Classification]string{
	hoso.ClassEarly:      "Trước hạn",
	hoso.ClassOnTime:     "Đúng hạn",
	hoso.ClassLate:       "Quá hạn",
	hoso.ClassInDeadline: "Trong hạn",
	hoso.ClassOverdue:    "Quá hạn",
	hoso.ClassPaused:     "Tạm dừng (chờ bổ sung)",
}

var eventNames = map[hoso.EventType]string{
	hoso.EventReceived:            "Tiếp nhận",
	hoso.EventTransferred:         "Chuyển xử lý",
	hoso.EventSupplementRequested: "Yêu cầu bổ sung",
	hoso.EventSupplementReceived:  "Nhận bổ sung",
	hoso.EventExtended:            "Xin lỗi, gia hạn",
	hoso.EventOverdue:             "Quá hạn",
	hoso.EventResolved:            "Giải quyết xong",
	hoso.EventReturned:            "Trả kết quả",
	hoso.EventWithdrawn:           "Rút hồ sơ",
}

var channelNames = map[hoso.Channel]string{
	hoso.ChannelDirect: "Trực tiếp",
	hoso.ChannelOnline: "Trực tuyến",
	hoso.ChannelPostal: "Bưu chính",
}

var outcomeNames = map[hoso.Outcome]string{
	hoso.OutcomeApproved: "Chấp thuận",
	hoso.OutcomeRejected: "Từ chối",
}
