
#if canImport(Glibc)
import Glibc
#endif
import Agent
import CShims

/// A fresh directory under /tmp, removed by the caller (or `addTeardownBlock`).
public func makeTempDir(_ prefix: String = "kata-test") -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}

public func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) {
    let fd = kata_open_mode(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    precondition(fd >= 0, "open \(path) failed")
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

public func readText(_ path: String) -> String? {
    guard let b = try? Posix.readFile(path) else { return nil }
    return String(decoding: b, as: UTF8.self)
}

/// Runs `body` in a forked child and returns what it wrote to the pipe plus its wait status.
/// Used for code that must run in its own namespace, or that may crash instead of throwing.
public func runInChild(_ body: (_ out: Int32) -> Int32) -> (output: String, status: Int32) {
    var p: [Int32] = [0, 0]
    precondition(kata_pipe2(&p, Int32(O_CLOEXEC)) == 0)
    fflush(nil)
    let pid = kata_fork()
    precondition(pid >= 0, "fork failed")
    if pid == 0 {
        close(p[0])
        _exit(body(p[1]))
    }
    close(p[1])
    var out: [UInt8] = []
    while let chunk = try? Posix.readSome(p[0]), !chunk.isEmpty { out += chunk }
    close(p[0])
    var st: Int32 = 0
    while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    return (String(decoding: out, as: UTF8.self), st)
}

public func emit(_ fd: Int32, _ s: String) {
    let b = Array(s.utf8)
    _ = b.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

public func describeWaitStatus(_ st: Int32) -> String {
    if kata_wifexited(st) != 0 { return "exit \(kata_wexitstatus(st))" }
    if kata_wifsignaled(st) != 0 { return "killed by signal \(kata_wtermsig(st))" }
    return "status \(st)"
}
