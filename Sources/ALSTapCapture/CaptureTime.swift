/// `--since` / `--until` of `alstap tap -r`: an instant (`2026-12-01T10:05:00Z`, with an
/// optional fraction and `Z` or `+hh:mm`), or a time of day (`10:05`, `10:05:00.5`, UTC) on the
/// capture's day: the day its first record was received.
public enum CaptureTime: Equatable, Sendable {
    /// µs since the epoch.
    case instant(Int64)
    /// µs since midnight, UTC.
    case timeOfDay(Int64)

    static let microsPerDay: Int64 = 86_400_000_000

    public init?(parsing text: String) {
        let parts = text.split(separator: "T", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 1 {
            guard let time = Self.clock(Substring(text)) else { return nil }
            self = .timeOfDay(time)
            return
        }
        let date = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard date.count == 3, date.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let year = Int64(date[0]), let month = Int64(date[1]), let day = Int64(date[2]),
              date[0].count == 4, (1...12).contains(month), (1...31).contains(day) else { return nil }
        var rest = parts[1]
        var offset: Int64 = 0
        if rest.hasSuffix("Z") || rest.hasSuffix("z") {
            rest = rest.dropLast()
        } else if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let zone = rest[rest.index(after: sign)...].split(separator: ":", omittingEmptySubsequences: false)
            guard zone.count == 2, zone.allSatisfy({ $0.count == 2 }), let hours = Int64(zone[0]), let minutes = Int64(zone[1]),
                  hours < 24, minutes < 60 else { return nil }
            offset = (hours * 60 + minutes) * 60_000_000 * (rest[sign] == "+" ? 1 : -1)
            rest = rest[..<sign]
        } else {
            return nil  // an instant names its zone
        }
        guard let time = Self.clock(rest) else { return nil }
        self = .instant(Self.daysFromCivil(year, month, day) * Self.microsPerDay + time - offset)
    }

    /// The instant, given the capture's first receive time (for a time of day).
    public func micros(onTheDayOf reference: Int64) -> Int64 {
        switch self {
        case .instant(let micros): micros
        // Wrapping: `reference` is a file's receive time, which may be anything.
        case .timeOfDay(let micros): reference &- ((reference % Self.microsPerDay) &+ Self.microsPerDay) % Self.microsPerDay &+ micros
        }
    }

    /// `HH:MM[:SS[.ffffff]]` as µs since midnight.
    private static func clock(_ text: Substring) -> Int64? {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(fields.count) else { return nil }
        func number(_ part: Substring, max: Int64) -> Int64? {
            guard part.count == 2, part.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(part), value <= max else { return nil }
            return value
        }
        guard let hours = number(fields[0], max: 23), let minutes = number(fields[1], max: 59) else { return nil }
        var micros = (hours * 60 + minutes) * 60_000_000
        if fields.count == 3 {
            let second = fields[2].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
            guard let seconds = number(second[0], max: 60) else { return nil }
            micros += seconds * 1_000_000
            if second.count == 2 {
                let digits = second[1]
                guard (1...6).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let fraction = Int64(digits + String(repeating: "0", count: 6 - digits.count)) else { return nil }
                micros += fraction
            }
        }
        return micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
