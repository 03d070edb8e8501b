import ArgumentParser
import JobObjects

/// A duration given on the command line: a number with a unit
/// (`ms`, `s`, `m`, `h`); a bare number is seconds. "500ms", "5s", "1.5m".
struct DurationArgument: ExpressibleByArgument, Sendable, Equatable {
    let duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(argument)
        var scale = 1.0
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = decimalNumber(number), value >= 0, let milliseconds = Int64(roundingExactly: value * scale * 1000) else {
            return nil
        }
        duration = .milliseconds(milliseconds)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
