#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer for the encoders: appends without bounds checks or per-call allocation.
///
/// One writer per event loop is reused for every message; `take()` hands the finished bytes over
/// as an immutable `SharedBytes` and starts the next buffer at a size class fitting the last one.
public final class ByteWriter {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public private(set) var count = 0
    private var capacity: Int
    private let initialCapacity: Int

    public init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        initialCapacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// The bytes written so far, valid until the next append.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public func removeAll() { count = 0 }

    /// Hands the written bytes over without copying them and starts a new buffer for a message
    /// like this one, not at the doubled capacity growth left: batches queued for subscribers
    /// then hold about what they use. Sizes are rounded to a few classes, so freed buffers fit
    /// the next ones instead of fragmenting the heap.
    public func take() -> SharedBytes {
        let taken = SharedBytes(adopting: UnsafeMutableRawPointer(base), count: count)
        capacity = Self.sizeClass(max(initialCapacity, count + count / 8))
        base = .allocate(capacity: capacity)
        count = 0
        return taken
    }

    /// `bytes` rounded up to one of four sizes per power of two (128, 160, 192, 224, 256 KiB, ...).
    static func sizeClass(_ bytes: Int) -> Int {
        let step = 1 << max(0, Int.bitWidth - (bytes - 1).leadingZeroBitCount - 3)
        return (bytes + step - 1) & ~(step - 1)
    }

    /// Counts `length` bytes written straight into `base + count` after a `reserve`.
    public func advance(by length: Int) { count += length }

    /// Removes bytes written after `mark` (used to drop a half-written entry).
    public func truncate(to mark: Int) { count = mark }

    @inline(__always)
    public func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    public func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    public func append(_ pointer: UnsafeRawPointer, count length: Int) {
        reserve(length)
        (base + count).update(from: pointer.assumingMemoryBound(to: UInt8.self), count: length)
        count += length
    }

    /// Like `append(_:count:)`, without a memcpy call for the short strings of a log entry:
    /// 8 to 16 bytes are two overlapping word copies.
    @inline(__always)
    public func appendShort(_ pointer: UnsafePointer<UInt8>, count length: Int) {
        guard length >= 8 && length <= 16 else {
            append(pointer, count: length)
            return
        }
        reserve(length)
        let source = UnsafeRawPointer(pointer)
        let destination = UnsafeMutableRawPointer(base + count)
        let head = source.loadUnaligned(as: UInt64.self)
        let tail = source.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
        destination.storeBytes(of: head, as: UInt64.self)
        destination.storeBytes(of: tail, toByteOffset: length - 8, as: UInt64.self)
        count += length
    }

    @inline(__always)
    public func append(_ text: StaticString) {
        append(text.utf8Start, count: text.utf8CodeUnitCount)
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0.baseAddress!, count: $0.count) }
    }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        if let start = bytes.baseAddress { append(start, count: bytes.count) }
    }

    public func appendDecimal(_ value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var digits = 2
        var limit: UInt64 = 100
        while value >= limit && digits < 20 {
            digits += 1
            limit = limit &* 10
        }
        appendPadded(value, width: digits)
    }

    /// Appends exactly `width` digits, zero-padded (timestamps, fractions), two digits per division.
    @inline(__always)
    public func appendPadded(_ value: UInt64, width: Int) {
        reserve(width)
        let pairs = Self.digitPairs.utf8Start
        var rest = value
        var position = count + width
        while position - count >= 2 {
            let (quotient, remainder) = rest.quotientAndRemainder(dividingBy: 100)
            let pair = Int(remainder) &* 2
            position -= 2
            base[position] = pairs[pair]
            base[position + 1] = pairs[pair + 1]
            rest = quotient
        }
        if position > count {
            base[count] = UInt8(truncatingIfNeeded: rest % 10) &+ 48
        }
        count += width
    }

    /// `,"name":` (without the comma when `comma` is false) in one reservation: JSON keys are
    /// short, so copied as words rather than by memcpy calls.
    @inline(__always)
    public func appendKey(_ name: StaticString, comma: Bool) {
        let length = name.utf8CodeUnitCount
        reserve(length + 4)
        var position = count
        if comma {
            base[position] = UInt8(ascii: ",")
            position += 1
        }
        base[position] = UInt8(ascii: "\"")
        count = position + 1
        appendShort(name.utf8Start, count: length)
        base[count] = UInt8(ascii: "\"")
        base[count + 1] = UInt8(ascii: ":")
        count += 2
    }

    private static let digitPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
}
