import ALSTapALS
import ALSTapFilter
import ALSTapFormats

/// What a sink needs decoded for it: the decoder encodes only the formats and computes only
/// the facts that some sink needs.
public struct SinkNeeds: Equatable, Sendable {
    public var formats: FormatSet
    public var facts: FactsNeed
    /// A masked subscriber's top-level members (with `FormatSet.memberIndex`).
    public var jsonMembers: JSONMembers

    public init(formats: FormatSet, facts: FactsNeed, jsonMembers: JSONMembers = .all) {
        self.formats = formats
        self.facts = facts
        self.jsonMembers = jsonMembers
    }
}

/// A consumer of the tap: a subscriber's queue (bytes a socket pulls), or anything else that
/// takes live entries (an aggregator, a file writer). `TapHub` offers every batch to every sink
/// (the pairer's records to the ones that pair) and asks none what it is. Loop-confined.
public protocol TapSink: AnyObject {
    /// nil: every entry. A filter with an index key gets only the entries that can match it.
    var filter: TapFilter? { get }
    /// `pair=1`: gets the pairer's records instead of single entries.
    var pairs: Bool { get }
    var needs: SinkNeeds { get }
    /// A live batch: the sink applies its own filter.
    func offer(_ batch: EncodedBatch)
    /// The entries of a live batch the index found for it (ascending); its filter still decides.
    func offer(_ batch: EncodedBatch, candidates: [Int])
    /// Entries it missed on the way (its loop's hand-off was full).
    func noteLost(_ count: Int, _ reason: LostReason)
    /// The end (shutdown, or a replay without follow): after `notice`, nothing more.
    func finish(notice: Notice?)
    /// Called once after each delivery round: a subscriber wakes its transport.
    func deliveryEnded()
}
