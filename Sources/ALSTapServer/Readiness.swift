/// What `/readyz` says, so that Kubernetes sends no new Envoy streams to a replica that is
/// draining or holds more memory than it should (the Service drops a pod that is not ready
/// from its endpoints; streams already open stay until `--max-stream-age` moves them).
struct Readiness: Equatable {
    let ready: Bool
    let reason: String

    /// `residentBytes`: the process's resident set now (nil: unknown, taken as under the bound);
    /// `maxBytes`: `--ready-max-memory` (0: no bound).
    static func evaluate(draining: Bool, residentBytes: Int?, maxBytes: Int) -> Readiness {
        if draining { return Readiness(ready: false, reason: "draining") }
        if maxBytes > 0, let resident = residentBytes, resident > maxBytes {
            return Readiness(ready: false, reason: "resident memory \(mebibytes(resident)) over --ready-max-memory \(mebibytes(maxBytes))")
        }
        return Readiness(ready: true, reason: "ready")
    }

    private static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }

    var response: HTTPResponse {
        ready ? HTTPResponse(200, "OK", "ready\n") : HTTPResponse(503, "Service Unavailable", "not ready: \(reason)\n")
    }
}
