import CEnvoyProtos
import CProtobufC

/// The Envoy that sent a stream, from the stream's Identifier (node and log name).
///
/// Istio sidecars set node.id `sidecar~IP~POD.NS~NS.svc.cluster.local` and node.metadata
/// NAMESPACE, NAME (pod), WORKLOAD_NAME, LABELS, CLUSTER_ID; plain Envoy sets only id and cluster.
/// Parsed once per stream and kept pre-encoded, so entries splice bytes instead of re-encoding.
/// A class: every entry refers to it, and a reference costs one retain where a struct of
/// strings and arrays would cost a dozen. `@unchecked Sendable`: every property is set in `init`
/// and never changed after, so the replay ring may hold it across loops.
public final class Reporter: @unchecked Sendable {
    public private(set) var logName = ""
    public private(set) var nodeId = ""
    public private(set) var cluster = ""
    public private(set) var namespace: String?
    public private(set) var workload: String?
    public private(set) var pod: String?
    public private(set) var clusterId: String?
    public private(set) var labels: [(key: String, value: String)] = []
    /// Istio's INSTANCE_IPS: the pod's own addresses (tells inbound from outbound when the
    /// upstream cluster is empty).
    public private(set) var instanceIPs: [String] = []

    /// UTF-8 of namespace, workload and pod, for the per-entry filter facts.
    private(set) var namespaceBytes: [UInt8] = []
    private(set) var workloadBytes: [UInt8] = []
    private(set) var podBytes: [UInt8] = []
    private(set) var logNameBytes: [UInt8] = []
    /// UTF-8 of the labels, for the `reporter_label` / `label` filter facts.
    private(set) var labelBytes: [(name: [UInt8], value: [UInt8])] = []

    /// `,"logName":…,"reporter":{…}` for the JSON line.
    public private(set) var jsonFragment: [UInt8] = []
    /// Where `,"reporter"` starts in `jsonFragment` (0 without a log name).
    private(set) var reporterMemberOffset = 0
    /// `"workload":…,"namespace":…,"pod":…` (may be empty) for the side the reporter is on.
    public private(set) var identityJSON: [UInt8] = []
    /// The Identifier for `format=als` (what alstap reads of it, see `relayIdentifier`); nil
    /// before it arrived.
    public private(set) var identifierBytes: SharedBytes?

    /// `workload.namespace`, else the node id, for the text line.
    public private(set) var textLabel: [UInt8] = Array("-".utf8)

    /// A stream whose Identifier has not arrived: `"reporter":{}`.
    public init() { encode() }

    /// Strings longer than this are cut (at a character), and at most `maxLabels` labels are
    /// kept: the reporter's fragment is copied into every line of its stream, so its size is
    /// bounded whatever the Identifier holds (Kubernetes names fit: 253 bytes at most).
    public static let maxFieldBytes = 256
    public static let maxLabels = 32

    init(_ identifier: UnsafePointer<CIdentifier>) {
        if let name = present(identifier.pointee.log_name) { logName = Self.capped(name) }
        if let node = identifier.pointee.node {
            if let id = present(node.pointee.id) { nodeId = Self.capped(id) }
            if let name = present(node.pointee.cluster) { cluster = Self.capped(name) }
            parseIstioNodeID()
            if let metadata = node.pointee.metadata { readIstioMetadata(metadata) }
        }
        encode()
        identifierBytes = relayIdentifier()
    }

    /// The Identifier a replica relays for `format=als`: what alstap reads of it (node id and
    /// cluster, Istio's metadata keys, the log name), from the capped fields, so it is small
    /// whatever the stream sent (an Identifier may be megabytes: it is kept per stream, and with
    /// every replayed message).
    private func relayIdentifier() -> SharedBytes {
        func field(_ number: UInt8, _ payload: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [number << 3 | 2]
            var length = payload.count
            while length >= 0x80 {
                out.append(UInt8(length & 0x7F) | 0x80)
                length >>= 7
            }
            return out + [UInt8(length)] + payload
        }
        func entry(_ key: String, _ value: [UInt8]) -> [UInt8] { field(1, field(1, Array(key.utf8)) + field(2, value)) }
        func text(_ value: String) -> [UInt8] { field(3, Array(value.utf8)) }  // Value.string_value
        var metadata: [UInt8] = []
        for (key, value) in [("NAMESPACE", namespace), ("NAME", pod), ("WORKLOAD_NAME", workload), ("CLUSTER_ID", clusterId)] {
            if let value { metadata += entry(key, text(value)) }
        }
        if !instanceIPs.isEmpty { metadata += entry("INSTANCE_IPS", text(instanceIPs.joined(separator: ","))) }
        if !labels.isEmpty {
            metadata += entry("LABELS", field(5, labels.flatMap { entry($0.key, text($0.value)) }))  // struct_value
        }
        var node: [UInt8] = []
        if !nodeId.isEmpty { node += field(1, Array(nodeId.utf8)) }
        if !cluster.isEmpty { node += field(2, Array(cluster.utf8)) }
        if !metadata.isEmpty { node += field(3, metadata) }
        let bytes = field(1, node) + (logName.isEmpty ? [] : field(2, Array(logName.utf8)))
        return bytes.withUnsafeBytes { SharedBytes(copying: $0) }
    }

    /// Memory this reporter holds (a replay ring record counts it).
    public var retainedBytes: Int {
        (identifierBytes?.count ?? 0) + jsonFragment.count + identityJSON.count + textLabel.count
            + nodeId.utf8.count + cluster.utf8.count + logName.utf8.count + labels.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            + 256
    }

    /// A protobuf-c string cut to `maxFieldBytes`.
    static func capped(_ string: UnsafePointer<CChar>) -> String {
        let bytes = utf8Bytes(string)
        guard bytes.count > maxFieldBytes else { return String(decoding: bytes, as: UTF8.self) }
        var cut = maxFieldBytes
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }  // not inside a character
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[..<cut]), as: UTF8.self)
    }

    /// `sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local` (also `router~…`).
    private func parseIstioNodeID() {
        let parts = nodeId.split(separator: "~", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "sidecar" || parts[0] == "router" else { return }
        let podAndNamespace = parts[2]
        if let dot = podAndNamespace.lastIndex(of: ".") {
            pod = String(podAndNamespace[..<dot])
            namespace = String(podAndNamespace[podAndNamespace.index(after: dot)...])
        } else if !podAndNamespace.isEmpty {
            pod = String(podAndNamespace)
        }
    }

    private func readIstioMetadata(_ metadata: UnsafePointer<CStruct>) {
        func string(_ key: String) -> String? {
            guard let value = structField(metadata, key) else { return nil }
            return cappedStringValue(value)
        }
        namespace = string("NAMESPACE") ?? namespace
        pod = string("NAME") ?? pod
        workload = string("WORKLOAD_NAME") ?? workload
        clusterId = string("CLUSTER_ID")
        // Addresses of the pod (a few): only the first 16 are compared.
        instanceIPs = (stringValue(structField(metadata, "INSTANCE_IPS")) ?? "").split(separator: ",", maxSplits: 16).prefix(16)
            .map { String($0.prefix(64)) }
        if let value = structField(metadata, "LABELS"), value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE,
           let object = value.pointee.struct_value {
            for i in 0..<object.pointee.n_fields {
                guard let entry = object.pointee.fields[i], let key = present(entry.pointee.key),
                      let text = cappedStringValue(entry.pointee.value) else { continue }
                labels.append((Self.capped(key), text))
            }
            labels.sort { $0.key < $1.key }
            if labels.count > Self.maxLabels { labels.removeLast(labels.count - Self.maxLabels) }
        }
    }

    private func cappedStringValue(_ value: UnsafeMutablePointer<CValue>?) -> String? {
        guard let value, value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
              let text = present(value.pointee.string_value) else { return nil }
        return Self.capped(text)
    }

    private func encode() {
        namespaceBytes = Array((namespace ?? "").utf8)
        workloadBytes = Array((workload ?? "").utf8)
        podBytes = Array((pod ?? "").utf8)
        logNameBytes = Array(logName.utf8)
        labelBytes = labels.map { (Array($0.key.utf8), Array($0.value.utf8)) }
        let writer = ByteWriter(capacity: 512)
        let identity = [("workload", workload), ("namespace", namespace), ("pod", pod)].compactMap { pair in
            pair.1.map { (pair.0, $0) }
        }
        Self.appendPairs(identity, to: writer)
        identityJSON = Array(writer.bytes)

        writer.removeAll()
        if !logName.isEmpty {
            writer.append(UInt8(ascii: ","))
            Self.appendPairs([("logName", logName)], to: writer)
        }
        reporterMemberOffset = writer.count
        writer.append(",\"reporter\":{")
        var reporter: [(String, String)] = []
        if !nodeId.isEmpty { reporter.append(("nodeId", nodeId)) }
        if !cluster.isEmpty { reporter.append(("cluster", cluster)) }
        reporter += identity
        if let clusterId { reporter.append(("clusterId", clusterId)) }
        Self.appendPairs(reporter, to: writer)
        if !labels.isEmpty {
            if !reporter.isEmpty { writer.append(UInt8(ascii: ",")) }
            writer.append("\"labels\":{")
            Self.appendPairs(labels.map { ($0.key, $0.value) }, to: writer)
            writer.append(UInt8(ascii: "}"))
        }
        writer.append(UInt8(ascii: "}"))
        jsonFragment = Array(writer.bytes)

        writer.removeAll()
        var label = workload.map { workload in namespace.map { "\(workload).\($0)" } ?? workload } ?? nodeId
        if label.isEmpty { label = "-" }
        label.withUTF8 { writer.appendEscaped($0, mode: .text) }
        textLabel = Array(writer.bytes)
    }

    /// Appends `"k":"v","k2":"v2"` with keys and values escaped.
    private static func appendPairs(_ pairs: [(String, String)], to writer: ByteWriter) {
        for (index, (key, value)) in pairs.enumerated() {
            if index > 0 { writer.append(UInt8(ascii: ",")) }
            var key = key
            var value = value
            writer.append(UInt8(ascii: "\""))
            key.withUTF8 { writer.appendEscaped($0, mode: .json) }
            writer.append("\":\"")
            value.withUTF8 { writer.appendEscaped($0, mode: .json) }
            writer.append(UInt8(ascii: "\""))
        }
    }
}
