/// The version `jobsup --version` prints; raised with each release (see CHANGELOG.md).
enum JobsupVersion {
    static let text = "0.1.0"
}
