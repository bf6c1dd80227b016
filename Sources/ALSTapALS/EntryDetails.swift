import CEnvoyProtos
import CProtobufC

/// The facts only some filters read (`FactsNeed.details`): the headers Envoy logged, the user
/// agent, both sides' labels and the gRPC status. Computed only while such a filter is open.
extension EntryFactsBuilder {
    /// Headers and labels per entry at most: a pathological entry cannot make its facts huge
    /// (what is beyond is not matched; the JSON line still shows it).
    static let maxPairsPerList = 64

    func addDetails(http entry: UnsafePointer<CHTTPEntry>, view: EntryView, to facts: inout EntryFacts) {
        let first = UInt32(pairs.count)
        if let request = entry.pointee.request?.pointee {
            facts.userAgent = store(request.user_agent)
            addHeaders(count: request.n_request_headers, request.request_headers)
        }
        if let response = entry.pointee.response?.pointee {
            addHeaders(count: response.n_response_headers, response.response_headers)
            // A gRPC call's status is in its trailers; a trailers-only answer has it in the headers.
            // Not when redacted: a filter must not reveal what the JSON hides.
            if !grpcStatusRedacted {
                facts.grpcStatus = Self.grpcStatus(count: response.n_response_trailers, response.response_trailers)
                    ?? Self.grpcStatus(count: response.n_response_headers, response.response_headers) ?? -1
            }
        }
        facts.headers = PairRange(first: first, count: UInt32(pairs.count) - first)
        addDetails(view: view, to: &facts)
    }

    /// What TCP entries have too: the labels.
    func addDetails(view: EntryView, to facts: inout EntryFacts) {
        facts.reporterLabels = reporterLabelsOfBatch
        if let metadata = view.peer.metadata { facts.peerLabels = store(peerLabels: metadata) }
    }

    /// The reporter's labels, once per batch.
    func store(labels reporter: Reporter) -> PairRange {
        let first = UInt32(pairs.count)
        for (name, value) in reporter.labelBytes {
            pairs.append(StringPair(name: store(name), value: store(value)))
        }
        return PairRange(first: first, count: UInt32(pairs.count) - first)
    }

    /// Istio's peer metadata keeps the `app` and `version` labels at its top level, and (recent
    /// proxies) the exported labels in a `labels` Struct.
    private func store(peerLabels metadata: UnsafePointer<CStruct>) -> PairRange {
        let first = UInt32(pairs.count)
        func add(_ field: UnsafeMutablePointer<Google__Protobuf__Struct__FieldsEntry>) {
            guard pairs.count - Int(first) < Self.maxPairsPerList, let key = present(field.pointee.key),
                  let value = field.pointee.value, value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
                  let text = present(value.pointee.string_value) else { return }
            pairs.append(StringPair(name: store(utf8Bytes(key)), value: store(utf8Bytes(text))))
        }
        for i in 0..<metadata.pointee.n_fields {
            guard let field = metadata.pointee.fields[i], let key = field.pointee.key else { continue }
            if cStringEquals(key, "app") || cStringEquals(key, "version") {
                add(field)
            } else if cStringEquals(key, "labels"), let value = field.pointee.value,
                      value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE,
                      let labels = value.pointee.struct_value {
                for j in 0..<labels.pointee.n_fields {
                    if let label = labels.pointee.fields[j] { add(label) }
                }
            }
        }
        return PairRange(first: first, count: UInt32(pairs.count) - first)
    }

    private func addHeaders<Entry: KeyValueEntry>(count: Int, _ entries: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) {
        guard count > 0, let entries else { return }
        for i in 0..<min(count, Self.maxPairsPerList) {
            guard let entry = entries[i], let key = present(entry.pointee.key) else { continue }
            // A redacted value is not matchable either: a filter must not reveal what the JSON hides.
            let value = JSONLineEncoder.isRedacted(key, redactedHeaders) ? store(JSONLineEncoder.redactedValue)
                : store(entry.pointee.value)
            pairs.append(StringPair(name: store(utf8Bytes(key)), value: value))
        }
    }


    /// `grpc-status` among the entries, as a number (0…16, or any status up to 999); nil: absent.
    private static func grpcStatus<Entry: KeyValueEntry>(count: Int, _ entries: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) -> Int32? {
        guard count > 0, let entries else { return nil }
        for i in 0..<count {
            guard let entry = entries[i], let key = entry.pointee.key, cStringEquals(key, "grpc-status"),
                  let value = present(entry.pointee.value) else { continue }
            let digits = utf8Bytes(value)
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return digits.reduce(0) { $0 * 10 + Int32($1 - 48) }
        }
        return nil
    }
}
