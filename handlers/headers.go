package handlers

import (
	"math"
	"net/http"
	"strconv"
)

// headerSlack is what ServerMaxHeaderBytes adds to the limit, so that
// net/http passes every request the router must measure itself.
const headerSlack = 4096

// ServerMaxHeaderBytes is the http.Server.MaxHeaderBytes to pair with a
// router of Options.MaxHeaderBytes limit. net/http's own limit is not
// exact: over HTTP/1.1 it lets 4096 bytes more through, and over HTTP/2 it
// advertises MaxHeaderBytes+320 as SETTINGS_MAX_HEADER_LIST_SIZE, counted
// with 32 bytes more per field. So the server is set above the limit, as a
// backstop that bounds the memory of a header read (it answers 431 itself,
// not in JSON, past limit+8 KiB over HTTP/1.1, or past limit+4 KiB of
// HTTP/2's count), and limitHeaders draws the line at the limit exactly.
func ServerMaxHeaderBytes(limit int) int { return min(limit, math.MaxInt32) + headerSlack }

// limitHeaders answers 431 with a JSON error to a request whose header
// block (headerSize) is larger than max bytes; max 0 means no limit.
func limitHeaders(max int) func(http.Handler) http.Handler {
	msg := "request header block larger than " + strconv.Itoa(max) + " bytes (--max-header-bytes)"
	return func(next http.Handler) http.Handler {
		if max <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if headerSize(r) > max {
				writeError(w, http.StatusRequestHeaderFieldsTooLarge, msg)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// headerSize is the size of r's header block as HTTP/1.1 carries it: the
// request line, a Host line, each header field as "Name: value" and each
// line with its CRLF, and the empty line that ends the block. For an
// HTTP/1.1 request written with one space after each colon (as clients
// write them) that is the exact count of bytes on the wire before the body;
// an HTTP/2 request is counted the same way from the same fields (its
// pseudo-headers as the request line and Host), so that one limit means
// the same on both.
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for _, te := range r.TransferEncoding { // net/http takes it out of Header
		n += len("Transfer-Encoding: ") + len(te) + 2
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n + 2
}
