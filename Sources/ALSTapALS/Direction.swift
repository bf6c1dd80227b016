#if canImport(Glibc)
import Glibc
#endif
import CEnvoyProtos

/// Which side of a request the reporting sidecar is on, read from `upstream_cluster`.
public enum Direction: UInt8, Sendable {
    case unknown, inbound, outbound

    var jsonName: StaticString {
        switch self {
        case .unknown: "unknown"
        case .inbound: "inbound"
        case .outbound: "outbound"
        }
    }
}

/// The parts of an Istio cluster name: `inbound|PORT||…` or `outbound|PORT|SUBSET|HOST`.
/// Slices point into the entry's C string and live as long as the decoded message.
struct ClusterName {
    var direction = Direction.unknown
    var port: UnsafeBufferPointer<UInt8>?
    var subset: UnsafeBufferPointer<UInt8>?
    /// `reviews.default.svc.cluster.local`
    var host: UnsafeBufferPointer<UInt8>?
    /// `reviews` and `default` when the host is a Kubernetes service name.
    var service: UnsafeBufferPointer<UInt8>?
    var namespace: UnsafeBufferPointer<UInt8>?

    init(_ cluster: UnsafePointer<CChar>?) {
        guard let cluster, cluster.pointee != 0 else { return }
        let bytes = utf8Bytes(cluster)
        // Positions of the first three '|' (no array: this runs for every entry).
        var bars = (-1, -1, -1)
        var barCount = 0
        for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "|") {
            switch barCount {
            case 0: bars.0 = i
            case 1: bars.1 = i
            case 2: bars.2 = i
            default: break
            }
            barCount += 1
        }
        guard barCount == 3 else {
            // Istio's catch-all clusters carry no port or host.
            if Self.hasPrefix(bytes, "InboundPassthroughCluster") { direction = .inbound }
            if Self.hasPrefix(bytes, "PassthroughCluster") || Self.hasPrefix(bytes, "BlackHoleCluster") {
                direction = .outbound
            }
            return
        }
        func slice(_ from: Int, _ to: Int) -> UnsafeBufferPointer<UInt8>? {
            from < to ? UnsafeBufferPointer(rebasing: bytes[from..<to]) : nil
        }
        guard let kind = slice(0, bars.0) else { return }
        if Self.equals(kind, "outbound") {
            direction = .outbound
        } else if Self.equals(kind, "inbound") {
            direction = .inbound
        } else {
            return
        }
        port = slice(bars.0 + 1, bars.1)
        subset = slice(bars.1 + 1, bars.2)
        host = slice(bars.2 + 1, bytes.count)
        if let host, let firstDot = host.firstIndex(of: UInt8(ascii: ".")),
           let secondDot = host[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")) {
            let rest = UnsafeBufferPointer(rebasing: host[(secondDot + 1)...])
            if Self.hasPrefix(rest, "svc") && (rest.count == 3 || rest[3] == UInt8(ascii: ".")) {
                service = UnsafeBufferPointer(rebasing: host[..<firstDot])
                namespace = UnsafeBufferPointer(rebasing: host[(firstDot + 1)..<secondDot])
            }
        }
    }

    private static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0
    }

    private static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        bytes.count >= text.utf8CodeUnitCount && memcmp(bytes.baseAddress!, text.utf8Start, text.utf8CodeUnitCount) == 0
    }
}
