import JobObjects
/// A resource the spec asks for that cannot be a limit.
struct LimitProblem: Error {
    var field: String
    var message: String
}
