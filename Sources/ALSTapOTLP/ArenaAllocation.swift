import CEnvoyProtos
import CProtobufC

/// Allocations for structs built in protobuf-c's layout, from the translator's arena (the one its
/// OTLP requests unpack into, reset with them), so the built messages cost no malloc and share
/// the arena's bound.
///
/// When the arena refuses (its bound), allocation does not fail in the middle of building: it
/// goes on into `sink`, a scratch block that nothing reads, and `failed` is set; the caller checks
/// it once the entry is built and drops the whole request. So the building code stays linear.
/// Structs are smaller than the sink; strings and arrays are only copied while nothing failed.
struct ArenaAllocation {
    private let allocator: UnsafeMutablePointer<ProtobufCAllocator>
    private let sink: UnsafeMutableRawPointer
    static let sinkBytes = 4096
    private(set) var failed = false

    init(allocator: UnsafeMutablePointer<ProtobufCAllocator>, sink: UnsafeMutableRawPointer) {
        self.allocator = allocator
        self.sink = sink
    }

    /// `size` bytes, 8-aligned (the arena's alignment).
    mutating func raw(_ size: Int) -> UnsafeMutableRawPointer {
        if !failed, let pointer = allocator.pointee.alloc(allocator.pointee.allocator_data, size) { return pointer }
        failed = true
        precondition(size <= Self.sinkBytes, "a struct or pointer array larger than the sink")
        return sink
    }

    /// A message struct, initialized by protobuf-c's generated `…__init`.
    mutating func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = raw(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
        initialize(pointer)
        return pointer
    }

    /// A protobuf-c string, cut at its first NUL byte: protobuf-c packs a struct's strings to
    /// their NUL, so a built entry relayed or kept for replay (packed) must hold no byte past one.
    mutating func string(_ text: UnsafeBufferPointer<UInt8>) -> UnsafeMutablePointer<CChar> {
        let bytes = beforeNUL(text)
        guard !failed, let pointer = allocator.pointee.alloc(allocator.pointee.allocator_data, bytes.count + 1) else {
            failed = true
            return sink.bindMemory(to: CChar.self, capacity: 1)
        }
        if let base = bytes.baseAddress { pointer.copyMemory(from: base, byteCount: bytes.count) }
        pointer.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
        return pointer.bindMemory(to: CChar.self, capacity: bytes.count + 1)
    }

    /// An array of `count` pointers of any length (a message's entries), or nil once the arena refused.
    mutating func entryArray<T>(_ count: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        guard !failed, let pointer = allocator.pointee.alloc(allocator.pointee.allocator_data,
                                                             max(1, count) * MemoryLayout<UnsafeMutablePointer<T>?>.stride)
        else {
            failed = true
            return nil
        }
        return pointer.bindMemory(to: UnsafeMutablePointer<T>?.self, capacity: count)
    }

    /// An array of `count` pointers (a repeated message field of an entry: a few dozen at most),
    /// nil-filled.
    mutating func pointers<T>(_ count: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?> {
        precondition(count * MemoryLayout<UnsafeMutablePointer<T>?>.stride <= Self.sinkBytes, "pointer array over the sink")
        let size = count * MemoryLayout<UnsafeMutablePointer<T>?>.stride
        let pointer: UnsafeMutableRawPointer
        if !failed, let allocated = allocator.pointee.alloc(allocator.pointee.allocator_data, size) {
            pointer = allocated
        } else {
            failed = true
            pointer = sink
        }
        let array = pointer.bindMemory(to: UnsafeMutablePointer<T>?.self, capacity: count)
        array.initialize(repeating: nil, count: count)
        return array
    }
}
