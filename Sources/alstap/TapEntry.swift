/// The parts of a server JSON line that `alstap tap -o text|wide` shows (the full schema is in
/// the README; `-o json` passes lines through untouched).
struct TapEntry: Decodable {
    struct Side: Decodable {
        var address: String?
        var workload: String?
        var namespace: String?
        var service: String?
        var port: Int?
    }

    struct Request: Decodable {
        var id: String?
        var method: String?
        var scheme: String?
        var path: String?
        var userAgent: String?
    }

    struct Response: Decodable {
        var code: Int?
        var flags: [String]?
    }

    struct Durations: Decodable {
        var total: Double?
    }

    struct Upstream: Decodable {
        var host: String?
    }

    struct Reporter: Decodable {
        var nodeId: String?
    }

    struct Connection: Decodable {
        var receivedBytes: Int?
        var sentBytes: Int?
    }

    /// One side of a paired record (`pair=1`).
    struct Half: Decodable {
        var time: String?
        var response: Response?
        var durations: Durations?
        var `protocol`: String?
    }

    /// `lost` and `shutdown` notices carry only a type (and a count).
    var type: String?
    var count: Int?
    var reason: String?
    /// `notice` lines of a cluster tap: which replica, and what happened to it.
    var peer: String?
    var message: String?
    var time: String?
    var direction: String?
    var source: Side?
    var destination: Side?
    var request: Request?
    var response: Response?
    var durations: Durations?
    var upstream: Upstream?
    var reporter: Reporter?
    var connection: Connection?
    var `protocol`: String?
    var paired: Bool?
    var requestId: String?
    var outbound: Half?
    var inbound: Half?
    var attempts: [Half]?
    var overheadMs: Double?
}
