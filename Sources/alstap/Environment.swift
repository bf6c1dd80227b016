import FoundationEssentials

/// The environment variables `serve` and `tap` read: the process's, or a test's.
struct Environment: ExpressibleByDictionaryLiteral {
    private let values: [String: String]

    init(_ values: [String: String]) {
        self.values = values
    }

    init(dictionaryLiteral elements: (String, String)...) {
        self.init(Dictionary(elements) { _, last in last })
    }

    static var process: Environment { Environment(ProcessInfo.processInfo.environment) }

    /// An empty value counts as unset (`ALSTAP_X= alstap serve` keeps the default).
    subscript(name: String) -> String? {
        values[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}
