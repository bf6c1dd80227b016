extension ByteWriter {
    /// RFC 3339 UTC with microseconds: `2026-11-27T07:18:08.123456Z`.
    public func appendTimestamp(seconds: Int64, nanos: Int32) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = UInt64(seconds - days * 86_400)
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        appendPadded(UInt64(clamping: year), width: 4)
        append(UInt8(ascii: "-"))
        appendPadded(UInt64(month), width: 2)
        append(UInt8(ascii: "-"))
        appendPadded(UInt64(day), width: 2)
        append(UInt8(ascii: "T"))
        appendPadded(secondOfDay / 3600, width: 2)
        append(UInt8(ascii: ":"))
        appendPadded(secondOfDay / 60 % 60, width: 2)
        append(UInt8(ascii: ":"))
        appendPadded(secondOfDay % 60, width: 2)
        append(UInt8(ascii: "."))
        appendPadded(UInt64(max(0, min(nanos, 999_999_999))) / 1000, width: 6)
        append(UInt8(ascii: "Z"))
    }

    /// Milliseconds with microsecond precision: `12.345` (plus `micros`, for differences).
    public func appendMilliseconds(seconds: Int64, nanos: Int32, micros extra: Int64 = 0) {
        let micros = seconds * 1_000_000 + Int64(nanos) / 1000 + extra
        if micros < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(micros.magnitude / 1000)
        append(UInt8(ascii: "."))
        appendPadded(micros.magnitude % 1000, width: 3)
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
