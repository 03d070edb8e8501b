import JobObjects
extension PayloadSpec {
    /// The sandbox mount point, with the default filled in.
    public var resolvedSandboxMountPoint: String {
        PayloadPaths.normalize(sandbox.mountPoint ?? PayloadPaths.defaultSandbox(name))
    }

    /// The job's own directory, /run/jobobjects/NAME.
    public var storageRoot: String { PayloadPaths.storageRoot(name) }

    /// Everything wrong with the spec that can be seen without the system.
    func staticProblems() -> [PayloadProblem] {
        var problems: [PayloadProblem] = []
        func add(_ field: String, _ message: String) { problems.append(problem(field, message)) }

        do {
            _ = try JobName(name)
            if name.hasPrefix(".") { add("name", "must not start with \".\" (such names are kept for the library's own state)") }
        } catch {
            add("name", error.message)
        }
        if payload.isEmpty { add("payload", "is empty; give the payload directory") }
        if command.isEmpty { add("command", "is empty; give at least the executable") }
        if let first = command.first, first.isEmpty { add("command[0]", "the executable is empty") }
        for (i, entry) in env.enumerated() {
            if entry.name.isEmpty || entry.name.contains("=") || entry.name.contains("\0") {
                add("env[\(i)].name", "\(quotedForMessage(entry.name)) is not a valid variable name")
            } else if entry.name == Self.sandboxVariable {
                add(
                    "env[\(i)].name",
                    "\(Self.sandboxVariable) is set by the runner to the sandbox mount point; use sandbox.mountPoint to move it")
            }
            if entry.value.contains("\0") { add("env[\(i)].value", "contains a NUL character") }
        }
        let sandboxPoint = resolvedSandboxMountPoint
        if let dir = workingDir {
            let expanded = PayloadPaths.expand(dir, sandbox: sandboxPoint)
            if !expanded.hasPrefix("/") { add("workingDir", "must be absolute (after expanding $(\(Self.sandboxVariable))): \(expanded)") }
        }
        resourceProblems(&problems)
        securityProblems(&problems)

        // Storage.
        let root = storageRoot
        if let given = sandbox.mountPoint {
            if !given.hasPrefix("/") { add("sandbox.mountPoint", "must be an absolute path") }
            if PayloadPaths.hasDotDot(given) { add("sandbox.mountPoint", "must not contain \"..\"") }
            if sandboxPoint == "/" { add("sandbox.mountPoint", "cannot be /") }
            if sandbox.mode == .hostVisible, !PayloadPaths.isWithin(sandboxPoint, root) || sandboxPoint == root {
                add("sandbox.mountPoint", "in host mode every mount lies under \(root)/; use e.g. \(root)/sandbox or omit it")
            }
        }
        var names = Set<String>()
        var targets = [sandboxPoint: "sandbox.mountPoint"]
        for (i, volume) in volumeMounts.enumerated() {
            let field = "volumeMounts[\(i)]"
            if volume.name.isEmpty { add(field + ".name", "is empty") }
            if !names.insert(volume.name).inserted { add(field + ".name", "another volume mount is also called \"\(volume.name)\"") }
            if !volume.hostPath.hasPrefix("/") { add(field + ".hostPath", "must be an absolute path on the host") }
            if PayloadPaths.hasDotDot(volume.hostPath) { add(field + ".hostPath", "must not contain \"..\"") }
            let target = PayloadPaths.normalize(PayloadPaths.expand(volume.mountPath, sandbox: sandboxPoint))
            if !target.hasPrefix("/") {
                add(field + ".mountPath", "must be absolute (after expanding $(\(Self.sandboxVariable))): \(volume.mountPath)")
            } else if PayloadPaths.hasDotDot(target) {
                add(field + ".mountPath", "must not contain \"..\"")
            } else if target == "/" {
                add(field + ".mountPath", "cannot be /")
            } else if let other = targets[target] {
                add(field + ".mountPath", "\(target) is already the mount point of \(other)")
            } else if sandbox.mode == .hostVisible, !PayloadPaths.isWithin(target, root) || target == root {
                add(
                    field + ".mountPath",
                    "in host mode every mount lies under \(root)/ (e.g. $(\(Self.sandboxVariable))/data or \(root)/data)")
            } else {
                targets[target] = field
            }
        }
        if terminationGracePeriodSeconds < 0 { add("terminationGracePeriodSeconds", "must be 0 or more") }
        return problems
    }

    private func resourceProblems(_ problems: inout [PayloadProblem]) {
        do {
            _ = try limits()
        } catch {
            problems.append(problem(error.field, error.message))
        }
    }

    /// The job limits the resources ask for.
    func limits() throws(LimitProblem) -> JobLimits {
        var limits = JobLimits()
        func bytes(_ text: String?, _ field: String) throws(LimitProblem) -> UInt64? {
            guard let text else { return nil }
            do { return try ByteCount.parse(text, what: "memory") } catch {
                throw LimitProblem(
                    field: field,
                    message: "\(quotedForMessage(text)) is not a size: give bytes or a number with Ki, Mi, Gi (e.g. 512Mi) or max")
            }
        }
        limits.memoryMax = try bytes(resources.limits.memory, "resources.limits.memory")
        limits.memoryMin = try bytes(resources.requests.memory, "resources.requests.memory")
        if let max = limits.memoryMax, let min = limits.memoryMin, min > max {
            throw LimitProblem(field: "resources.requests.memory", message: "is more than resources.limits.memory")
        }
        if let cpu = resources.limits.cpu {
            guard let count = Self.cpuCount(cpu) else {
                throw LimitProblem(
                    field: "resources.limits.cpu",
                    message: "\(quotedForMessage(cpu)) is not a CPU quantity: give CPUs (1.5) or millicpus (500m)")
            }
            limits.cpu = .cpus(count)
        }
        if let cpu = resources.requests.cpu {
            guard let count = Self.cpuCount(cpu) else {
                throw LimitProblem(
                    field: "resources.requests.cpu",
                    message: "\(quotedForMessage(cpu)) is not a CPU quantity: give CPUs (0.25) or millicpus (250m)")
            }
            // Kubernetes' conversion: millicpus → cpu.shares → cpu.weight.
            let shares = max(2.0, (count * 1024).rounded())
            limits.cpuWeight = CPUWeight(Int(exactly: (1 + ((shares - 2) * 9999) / 262142).rounded(.towardZero)) ?? .max)
        }
        if let pids = resources.limits.pids {
            guard pids > 0 else { throw LimitProblem(field: "resources.limits.pids", message: "must be 1 or more") }
            limits.maxProcesses = pids
        }
        if resources.requests.pids != nil {
            throw LimitProblem(field: "resources.requests.pids", message: "processes have no request; use resources.limits.pids")
        }
        do { try limits.validate() } catch {
            throw LimitProblem(field: "resources", message: error.message)
        }
        return limits
    }

    /// "500m" → 0.5, "1.5" → 1.5; nil when malformed or not positive.
    static func cpuCount(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespace
        let value = trimmed.hasSuffix("m") ? decimalNumber(trimmed.dropLast()).map { $0 / 1000 } : decimalNumber(trimmed)
        guard let value, value.isFinite, value > 0 else { return nil }
        return value
    }

    private func securityProblems(_ problems: inout [PayloadProblem]) {
        func add(_ field: String, _ message: String) { problems.append(problem(field, message)) }
        let context = securityContext
        if context.ephemeralUser != nil, context.runAsUser != nil {
            add("securityContext.ephemeralUser", "cannot be combined with runAsUser: an ephemeral user is allocated for the job")
        }
        if context.ephemeralUser != nil, context.runAsGroup != nil {
            add("securityContext.runAsGroup", "an ephemeral user runs in ephemeralUser.group; remove runAsGroup")
        }
        if let range = context.ephemeralUser?.uidRange, range.lowerBound == 0 || range.upperBound == UInt32.max {
            add("securityContext.ephemeralUser.uidRange", "must lie within 1…4294967294")
        }
        if let caps = context.capabilities {
            for (list, names) in [("add", caps.add), ("drop", caps.drop)] {
                for (i, name) in names.enumerated() where name.uppercased() != "ALL" {
                    do { _ = try Capability(name: name) } catch {
                        add("securityContext.capabilities.\(list)[\(i)]", error.message)
                    }
                }
            }
            if caps.add.contains(where: { $0.uppercased() == "ALL" }) && caps.drop.contains(where: { $0.uppercased() == "ALL" }) {
                add("securityContext.capabilities", "adds and drops ALL; say which capabilities to keep in add")
            }
        }
        if case .localhost(let path) = context.seccompProfile, path.isEmpty {
            add("securityContext.seccompProfile.localhostProfile", "is empty")
        }
    }
}
