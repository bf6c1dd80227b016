import CEnvoyProtos
import CProtobufC

/// A workload identity as byte slices (into the decoded message or the reporter), any part optional.
struct Identity {
    var namespace: UnsafeBufferPointer<UInt8>?
    var workload: UnsafeBufferPointer<UInt8>?
    var pod: UnsafeBufferPointer<UInt8>?
    var service: UnsafeBufferPointer<UInt8>?
    /// The peer metadata it was read from (its labels are filter facts).
    var metadata: UnsafePointer<CStruct>?
}

/// What alstap derives once per entry and shares between the encoders and the filter facts:
/// the direction and the identity of the peer (the side that is not the reporter).
/// Slices point into the decoded message; valid until the decoder's arena is reset.
struct EntryView {
    let common: UnsafePointer<CCommon>?
    let cluster: ClusterName
    let direction: Direction
    /// The other side, from Istio's `upstream_peer` / `downstream_peer` filter state
    /// (a google.protobuf.Struct in an Any), or for outbound entries the cluster's service.
    let peer: Identity

    init(_ common: UnsafePointer<CCommon>?, reporter: Reporter, allocator: UnsafeMutablePointer<ProtobufCAllocator>,
         wireCheck: WireCheck) {
        self.common = common
        cluster = ClusterName(common?.pointee.upstream_cluster)
        var direction = cluster.direction
        if direction == .unknown, !reporter.instanceIPs.isEmpty, let local = common?.pointee.downstream_local_address {
            // No upstream chosen (no route, local reply): the listener address tells the side.
            direction = Self.isLocal(local, reporter.instanceIPs) ? .inbound : .outbound
        }
        self.direction = direction
        var peer = Identity()
        if let common, direction != .unknown {
            let key: StaticString = direction == .outbound ? "upstream_peer" : "downstream_peer"
            peer = Self.peerIdentity(common, key: key, allocator: allocator, wireCheck: wireCheck)
        }
        if direction == .outbound {
            if peer.namespace == nil { peer.namespace = cluster.namespace }
            if peer.service == nil { peer.service = cluster.service }
        }
        self.peer = peer
    }

    private static func isLocal(_ address: UnsafePointer<CAddress>, _ instanceIPs: [String]) -> Bool {
        guard address.pointee.address_case == ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS,
              let socket = address.pointee.socket_address, let host = present(socket.pointee.address) else { return false }
        let bytes = utf8Bytes(host)
        return instanceIPs.contains { ip in ip.utf8.elementsEqual(bytes) }
    }

    /// Decodes Istio's peer metadata (keys workload, namespace, name, service) into the arena.
    /// The Struct inside the Any is unpacked only after the wire check passed it (it nests
    /// like any Struct); one that does not pass gives no identity.
    private static func peerIdentity(_ common: UnsafePointer<CCommon>, key: StaticString,
                                     allocator: UnsafeMutablePointer<ProtobufCAllocator>,
                                     wireCheck: WireCheck) -> Identity {
        let c = common.pointee
        for i in 0..<c.n_filter_state_objects {
            guard let entry = c.filter_state_objects[i], let entryKey = entry.pointee.key,
                  cStringEquals(entryKey, key),
                  let any = entry.pointee.value,
                  let typeURL = present(any.pointee.type_url),
                  utf8Bytes(typeURL).elementsEqual("type.googleapis.com/google.protobuf.Struct".utf8),
                  (try? wireCheck.check(struct: UnsafeRawBufferPointer(start: any.pointee.value.data,
                                                                       count: any.pointee.value.len), depth: 1)) != nil,
                  let object = google__protobuf__struct__unpack(allocator, any.pointee.value.len, any.pointee.value.data)
            else { continue }
            var identity = Identity(metadata: UnsafePointer(object))
            for j in 0..<object.pointee.n_fields {
                guard let field = object.pointee.fields[j], let name = field.pointee.key,
                      let value = field.pointee.value,
                      value.pointee.kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE,
                      let text = present(value.pointee.string_value) else { continue }
                let bytes = utf8Bytes(text)
                if cStringEquals(name, "namespace") {
                    identity.namespace = bytes
                } else if cStringEquals(name, "workload") {
                    identity.workload = bytes
                } else if cStringEquals(name, "name") {
                    identity.pod = bytes
                } else if cStringEquals(name, "service") {
                    identity.service = bytes
                }
            }
            return identity
        }
        return Identity()
    }
}
