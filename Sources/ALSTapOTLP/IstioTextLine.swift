/// Reads Istio's default text access-log line, the body Istio's `envoyOtelAls` provider sends
/// when no `logFormat` is set:
///
///     [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
///     %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
///     "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
///     %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
///     "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW%
///     %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
///     %REQUESTED_SERVER_NAME% %ROUTE_NAME%
///
/// (one line). Pure: slices of `line` go into the fields; a line of another shape is not read
/// at all (the record then keeps it as its body).
package enum IstioTextLine {
    /// The 21 values after the bracketed start time.
    static let valueCount = 21

    package static func parse(_ line: Bytes, into fields: inout AccessFields) -> Bool {
        var line = line
        while let last = line.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
            line = Bytes(rebasing: line[..<(line.count - 1)])
        }
        guard line.first == UInt8(ascii: "["), let close = line.firstIndex(of: UInt8(ascii: "]")) else { return false }
        let time = Bytes(rebasing: line[1..<close])
        var values: [Bytes] = []
        values.reserveCapacity(valueCount)
        var i = close + 1
        while i < line.count {
            guard line[i] == UInt8(ascii: " ") else { return false }
            i += 1
            guard i < line.count else { return false }
            if line[i] == UInt8(ascii: "\"") {
                // Quoted: up to the quote followed by a space or the end of the line.
                var end = i + 1
                while end < line.count, !(line[end] == UInt8(ascii: "\"") && (end + 1 == line.count || line[end + 1] == UInt8(ascii: " "))) {
                    end += 1
                }
                guard end < line.count else { return false }
                values.append(Bytes(rebasing: line[(i + 1)..<end]))
                i = end + 1
            } else {
                var end = i
                while end < line.count, line[end] != UInt8(ascii: " ") { end += 1 }
                values.append(Bytes(rebasing: line[i..<end]))
                i = end
            }
            guard values.count <= valueCount else { return false }
        }
        guard values.count == valueCount else { return false }
        // "METHOD PATH PROTOCOL": the path is what lies between the first and the last space.
        let requestLine = values[0]
        guard let firstSpace = requestLine.firstIndex(of: UInt8(ascii: " ")),
              let lastSpace = requestLine.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace
        else { return false }
        guard let code = number(values[1]), let received = number(values[6]), let sent = number(values[7]),
              let duration = number(values[8])
        else { return false }
        var f = AccessFields()
        f.startNanos = fields.startNanos > 0 ? fields.startNanos : (TimeParsing.nanos(rfc3339: time) ?? 0)
        f.method = meaningful(Bytes(rebasing: requestLine[..<firstSpace]))
        f.path = meaningful(Bytes(rebasing: requestLine[(firstSpace + 1)..<lastSpace]))
        f.protocolVersion = meaningful(Bytes(rebasing: requestLine[(lastSpace + 1)...]))
        f.code = code
        f.responseFlags = meaningful(values[2])
        f.codeDetails = meaningful(values[3])
        f.connectionTerminationDetails = meaningful(values[4])
        f.upstreamTransportFailureReason = meaningful(values[5])
        f.requestBodyBytes = received
        f.responseBodyBytes = sent
        f.durationUs = duration * 1000
        f.forwardedFor = meaningful(values[10])
        f.userAgent = meaningful(values[11])
        f.requestId = meaningful(values[12])
        f.authority = meaningful(values[13])
        f.upstreamHost = meaningful(values[14])
        f.upstreamCluster = meaningful(values[15])
        f.upstreamLocalAddress = meaningful(values[16])
        f.downstreamLocalAddress = meaningful(values[17])
        f.downstreamRemoteAddress = meaningful(values[18])
        f.requestedServerName = meaningful(values[19])
        f.routeName = meaningful(values[20])
        f.traceId = fields.traceId
        f.spanId = fields.spanId
        fields = f
        return true
    }

    /// A number, or `-` (none: 0 for a code, as Envoy writes 0 itself when there is no response).
    private static func number(_ text: Bytes) -> UInt64? {
        meaningful(text) == nil ? 0 : decimal(text)
    }
}

/// Parsing Envoy's %START_TIME% (`2026-12-01T18:35:35.123Z`, UTC).
package enum TimeParsing {
    package static func nanos(rfc3339 text: Bytes) -> UInt64? {
        guard text.count >= 20, text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"),
              text[10] == UInt8(ascii: "T"), text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"),
              text.last == UInt8(ascii: "Z"),
              let year = decimal(Bytes(rebasing: text[0..<4])), let month = decimal(Bytes(rebasing: text[5..<7])),
              let day = decimal(Bytes(rebasing: text[8..<10])), let hour = decimal(Bytes(rebasing: text[11..<13])),
              let minute = decimal(Bytes(rebasing: text[14..<16])), let second = decimal(Bytes(rebasing: text[17..<19])),
              (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
              second < 61
        else { return nil }
        var fraction: UInt64 = 0
        if text.count > 20 {
            guard text[19] == UInt8(ascii: "."), text.count - 21 <= 9, text.count > 21,
                  let digits = decimal(Bytes(rebasing: text[20..<(text.count - 1)])) else { return nil }
            fraction = digits
            for _ in 0..<(9 - (text.count - 21)) { fraction *= 10 }
        } else if text[19] != UInt8(ascii: "Z") {
            return nil
        }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = Int64(year) - (month <= 2 ? 1 : 0)
        let era = y / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = UInt64(days) * 86_400 + hour * 3600 + minute * 60 + second
        return seconds * 1_000_000_000 + fraction
    }
}
