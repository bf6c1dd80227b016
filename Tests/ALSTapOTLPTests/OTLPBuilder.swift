import ALSTapALS
import ALSTapOTLP
import Foundation

/// Builds ExportLogsServiceRequest wire bytes for the tests (field numbers of opentelemetry-proto).
indirect enum OTLPValue {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case array([OTLPValue])
    case kvlist([(String, OTLPValue)])
    case bytes([UInt8])

    func write(_ p: ProtoWriter) {
        switch self {
        case .string(let text): Array(text.utf8).withUnsafeBufferPointer { p.bytes(1, $0) }
        case .bool(let value): p.varint(2, value ? 1 : 0)
        case .int(let value): p.varint(3, UInt64(bitPattern: value))
        case .double(let value):
            p.tag(4, 1)
            withUnsafeBytes(of: value.bitPattern.littleEndian) { p.out.append($0) }
        case .array(let values): p.message(5) { for v in values { p.message(1) { v.write(p) } } }
        case .kvlist(let pairs): p.message(6) { OTLPBuilder.keyValues(p, field: 1, pairs) }
        case .bytes(let data): data.withUnsafeBufferPointer { p.bytes(7, $0) }
        }
    }
}

struct OTLPRecord {
    var time: UInt64 = 1_796_150_312_057_568_000
    var body: OTLPValue?
    var attributes: [(String, OTLPValue)] = []
    var traceId: [UInt8] = []
    var spanId: [UInt8] = []
}

struct OTLPResource {
    var attributes: [(String, OTLPValue)] = []
    var records: [OTLPRecord] = []
}

enum OTLPBuilder {
    static func keyValues(_ p: ProtoWriter, field: UInt32, _ pairs: [(String, OTLPValue)]) {
        for (key, value) in pairs {
            p.message(field) {
                Array(key.utf8).withUnsafeBufferPointer { p.bytes(1, $0) }
                p.message(2) { value.write(p) }
            }
        }
    }

    static func request(_ resources: [OTLPResource]) -> [UInt8] {
        let out = ByteWriter(capacity: 1024)
        let p = ProtoWriter(out)
        for resource in resources {
            p.message(1) {  // resource_logs
                p.message(1) { keyValues(p, field: 1, resource.attributes) }  // resource
                p.message(2) {  // scope_logs
                    for record in resource.records {
                        p.message(2) {  // log_records
                            p.tag(1, 1)  // time_unix_nano, fixed64
                            withUnsafeBytes(of: record.time.littleEndian) { p.out.append($0) }
                            if let body = record.body { p.message(5) { body.write(p) } }
                            keyValues(p, field: 6, record.attributes)
                            if !record.traceId.isEmpty { record.traceId.withUnsafeBufferPointer { p.bytes(9, $0) } }
                            if !record.spanId.isEmpty { record.spanId.withUnsafeBufferPointer { p.bytes(10, $0) } }
                        }
                    }
                }
            }
        }
        return Array(out.bytes)
    }

    /// Envoy's own resource attributes, as a sidecar sends them (computed: see `fullRecord`).
    static var envoyResource: [(String, OTLPValue)] { [
        ("log_name", .string("otlp")), ("zone_name", .string("")), ("cluster_name", .string("productpage.demo")),
        ("node_name", .string("sidecar~10.0.0.1~productpage-v1-abc.demo~demo.svc.cluster.local")),
        ("k8s.deployment.name", .string("productpage-v1")),
    ] }
}

/// A translation's outcome: the JSON lines of each message (decoded by alstap's ALS decoder, as
/// the server does), the reporters, and the rejections.
struct Translated {
    var messages: [[[String: Any]]] = []
    var reporters: [Reporter] = []
    var rejections = OTLPRejections()
    /// Messages whose decoded entry count differs from what the translator said.
    var countMismatches = 0

    var entries: [[String: Any]] { messages.flatMap { $0 } }

    static func of(_ request: [UInt8], limits: DecodeLimits = DecodeLimits()) throws(GRPCStatusError) -> Translated {
        let translator = OTLPTranslator(limits: limits)
        let decoder = ALSDecoder(limits: limits)
        var out = Translated()
        var result: Result<OTLPRejections, GRPCStatusError>!
        request.withUnsafeBytes { payload in
            do throws(GRPCStatusError) {
                result = .success(try translator.translate(payload) { message throws(GRPCStatusError) in
                    var reporter = Reporter()
                    try translator.attachIdentifier(message)
                    let batch = try decoder.encode(built: message.message, reporter: &reporter, formats: [.json], decodedAtNanos: 0)
                    if batch.entryCount != message.entryCount { out.countMismatches += 1 }
                    let text = String(decoding: batch.json!.bytes.bytes, as: UTF8.self)
                    out.messages.append(text.split(separator: "\n").map {
                        (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? ["unparsable": String($0)]
                    })
                    out.reporters.append(reporter)
                })
            } catch {
                result = .failure(error)
            }
        }
        out.rejections = try result.get()
        return out
    }
}
